"""Stripe's webhook end to end through the app, with localstripe holding the customers and subscriptions (driven
through the official SDK): each handled event, the signature checks (tampered, stale, replayed), one processing
per event id, out-of-order events, unknown customers, malformed bodies, our own failure, and the audit rows.
One test lets localstripe deliver its own signed events to a live app server."""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
import time
import uuid
from typing import Any

import pytest
import stripe
from sqlalchemy import func, select, text
from werkzeug.serving import make_server

from app.audit.models import AuditEntry
from app.billing.gateway import stripe_client
from app.billing.models import StripeEvent, TenantBilling
from app.services import services_of
from app.tenancy import tenant_session
from tests.billing_stripe import register_webhook, sign_payload, unregister_webhook

# localstripe's handlers are plain functions, which aiohttp warns about on every request it serves.
pytestmark = pytest.mark.filterwarnings("ignore:Bare functions are deprecated:DeprecationWarning")
GOOD_CARD, DECLINED_ON_CHARGE = "4242424242424242", "4000000000000341"  # localstripe's test cards


@pytest.fixture()
def sdk(app, stripe_settings) -> stripe.StripeClient:  # type: ignore[no-untyped-def]
    return stripe_client(services_of(app).config)


@pytest.fixture()
def tenant(app, make_tenant, sdk, redis_conn):  # type: ignore[no-untyped-def]
    """A workspace on Free with its own Stripe customer (what the upgrade button creates and stores)."""
    info = make_tenant("Billing Co")
    customer = sdk.v1.customers.create(params={"email": info.owner_email, "metadata": {"tenant": str(info.id)}})
    with tenant_session(info.id, app.extensions["session_factory"]) as session:
        row = session.execute(select(TenantBilling)).scalar_one()
        row.plan, row.status, row.stripe_customer_id = "free", "none", customer.id
    info.customer = customer.id  # type: ignore[attr-defined]
    return info


def card(sdk: stripe.StripeClient, customer: str, number: str = GOOD_CARD) -> str:
    """A card in localstripe as the customer's default (in real use this happens on Stripe's own pages)."""
    pm = sdk.v1.payment_methods.create(params={"type": "card", "card": {
        "number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
    sdk.v1.payment_methods.attach(pm.id, params={"customer": customer})
    sdk.v1.customers.update(customer, params={"invoice_settings": {"default_payment_method": pm.id}})
    return pm.id


def subscribe(sdk: stripe.StripeClient, customer: str, plan: str) -> dict[str, Any]:
    card(sdk, customer)
    return sdk.v1.subscriptions.create(params={"customer": customer, "items": [{"plan": plan}]}).to_dict()


def event(kind: str, obj: dict[str, Any], *, created: int | None = None, event_id: str | None = None) -> dict:
    return {"id": event_id or "evt_" + secrets.token_hex(12), "object": "event", "type": kind,
            "created": int(time.time()) if created is None else created, "livemode": False,
            "api_version": "2017-08-15", "data": {"object": obj}}


def post(client, body: dict | bytes, *, secret: str | None = None, at: float | None = None,  # type: ignore[no-untyped-def]
         signature: str | None = None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if signature is None:
        from tests.billing_stripe import WEBHOOK_SECRET

        signature = sign_payload(raw, secret or WEBHOOK_SECRET, at)
    return client.post("/webhooks/stripe", data=raw,
                       headers={"Content-Type": "application/json", "Stripe-Signature": signature})


def billing_row(app, tenant) -> TenantBilling:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        row = session.execute(select(TenantBilling)).scalar_one()
        session.expunge(row)
        return row


def audit_rows(app, tenant, prefix: str = "billing.") -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        rows = list(session.execute(select(AuditEntry).where(AuditEntry.action.startswith(prefix))
                                    .order_by(AuditEntry.id)).scalars())
        for row in rows:
            session.expunge(row)
        return rows


def events_kept(app, tenant) -> int:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        return session.execute(select(func.count()).select_from(StripeEvent)).scalar_one()


def checkout_completed(tenant, subscription_id: str) -> dict:  # type: ignore[no-untyped-def]
    return event("checkout.session.completed", {
        "id": "cs_test_" + secrets.token_hex(8), "object": "checkout.session", "mode": "subscription",
        "customer": tenant.customer, "subscription": subscription_id, "status": "complete",
        "client_reference_id": str(tenant.id)})


# Each handled event


def test_a_completed_checkout_stores_the_subscription_with_its_status_and_plan_from_stripe(
        app, client, tenant, sdk, stripe_settings):
    sub = subscribe(sdk, tenant.customer, stripe_settings.price_monthly)
    response = post(client, checkout_completed(tenant, sub["id"]))
    assert response.status_code == 200, response.get_json()
    row = billing_row(app, tenant)
    assert (row.stripe_subscription_id, row.status, row.plan, row.billing_interval) == (
        sub["id"], "active", "pro", "month")
    assert row.current_period_end == dt.datetime.fromtimestamp(sub["current_period_end"], dt.UTC)
    assert row.cancel_at_period_end is False
    rows = {r.action: r for r in audit_rows(app, tenant)}
    assert set(rows) == {"billing.subscription_changed", "billing.plan_changed"}
    assert rows["billing.plan_changed"].before == {"plan": "free", "billing_interval": None}
    assert rows["billing.plan_changed"].after == {"plan": "pro", "billing_interval": "month"}
    changed = rows["billing.subscription_changed"]
    assert changed.before["status"] == "none" and changed.after["status"] == "active"
    assert changed.after["stripe_subscription_id"] == sub["id"]
    assert all((r.actor_type, r.actor_label) == ("system", "stripe") for r in rows.values())


def test_a_created_subscription_on_the_yearly_price_is_pro_yearly(app, client, tenant, sdk, stripe_settings):
    sub = subscribe(sdk, tenant.customer, stripe_settings.price_yearly)
    assert post(client, event("customer.subscription.created", sub)).status_code == 200
    row = billing_row(app, tenant)
    assert (row.status, row.plan, row.billing_interval) == ("active", "pro", "year")


def test_an_updated_subscription_applies_what_stripe_has_now(app, client, tenant, sdk, stripe_settings):
    sub = subscribe(sdk, tenant.customer, stripe_settings.price_monthly)
    post(client, event("customer.subscription.created", sub))
    item = sub["items"]["data"][0]["id"]
    updated = sdk.v1.subscriptions.update(sub["id"], params={
        "cancel_at_period_end": True, "items": [{"id": item, "plan": stripe_settings.price_yearly}]}).to_dict()
    assert post(client, event("customer.subscription.updated", updated)).status_code == 200
    row = billing_row(app, tenant)
    assert (row.plan, row.billing_interval, row.cancel_at_period_end) == ("pro", "year", True)
    plan_rows = [r for r in audit_rows(app, tenant) if r.action == "billing.plan_changed"]
    assert (plan_rows[-1].before, plan_rows[-1].after) == ({"billing_interval": "month"}, {"billing_interval": "year"})
    sub_rows = [r for r in audit_rows(app, tenant) if r.action == "billing.subscription_changed"]
    assert sub_rows[-1].before["cancel_at_period_end"] is False and sub_rows[-1].after["cancel_at_period_end"] is True


def test_a_deleted_subscription_falls_back_to_free_and_says_so_in_the_log(app, client, tenant, sdk, stripe_settings):
    sub = subscribe(sdk, tenant.customer, stripe_settings.price_monthly)
    post(client, event("customer.subscription.created", sub))
    canceled = sdk.v1.subscriptions.cancel(sub["id"]).to_dict()
    assert post(client, event("customer.subscription.deleted", canceled)).status_code == 200
    row = billing_row(app, tenant)
    assert (row.status, row.plan, row.billing_interval) == ("canceled", "free", None)
    last_plan = [r for r in audit_rows(app, tenant) if r.action == "billing.plan_changed"][-1]
    assert (last_plan.before, last_plan.after) == ({"plan": "pro", "billing_interval": "month"},
                                                   {"plan": "free", "billing_interval": None})


def _past_due(sdk: stripe.StripeClient, tenant, stripe_settings) -> tuple[dict, dict, str]:  # type: ignore[no-untyped-def]
    """A subscription whose renewal was declined in localstripe: (subscription, the open invoice, good card)."""
    sub = subscribe(sdk, tenant.customer, stripe_settings.price_monthly)
    good = sdk.v1.customers.retrieve(tenant.customer).to_dict()["invoice_settings"]["default_payment_method"]
    card(sdk, tenant.customer, DECLINED_ON_CHARGE)
    item = sub["items"]["data"][0]["id"]  # a new interval bills at once, on the declined card
    sub = sdk.v1.subscriptions.update(sub["id"], params={"items": [{"id": item, "plan": stripe_settings.price_yearly}]}
                                      ).to_dict()
    invoice = sdk.v1.invoices.retrieve(sub["latest_invoice"]).to_dict()
    assert (sub["status"], invoice["status"]) == ("past_due", "open")
    return sub, invoice, good


def test_a_failed_payment_starts_seven_days_of_grace_and_a_paid_invoice_ends_it(
        app, client, tenant, sdk, stripe_settings):
    sub, invoice, good = _past_due(sdk, tenant, stripe_settings)
    failed_at = int(time.time())
    assert post(client, event("invoice.payment_failed", invoice, created=failed_at)).status_code == 200
    assert post(client, event("customer.subscription.updated", sub)).status_code == 200
    row = billing_row(app, tenant)
    assert row.status == "past_due"
    assert row.payment_failed_at == dt.datetime.fromtimestamp(failed_at, dt.UTC)
    assert row.grace_ends_at == row.payment_failed_at + dt.timedelta(days=7)
    failed = [r for r in audit_rows(app, tenant) if r.action == "billing.payment_failed"]
    assert len(failed) == 1 and failed[0].before == {"payment_failed_at": None, "grace_ends_at": None}
    assert failed[0].after["grace_ends_at"] == row.grace_ends_at.isoformat()

    sdk.v1.customers.update(tenant.customer, params={"invoice_settings": {"default_payment_method": good}})
    paid = sdk.v1.invoices.pay(invoice["id"]).to_dict()
    assert post(client, event("invoice.paid", paid, created=failed_at + 60)).status_code == 200
    assert post(client, event("customer.subscription.updated", sdk.v1.subscriptions.retrieve(sub["id"]).to_dict())
                ).status_code == 200
    row = billing_row(app, tenant)
    assert (row.status, row.payment_failed_at, row.grace_ends_at) == ("active", None, None)
    succeeded = [r for r in audit_rows(app, tenant) if r.action == "billing.payment_succeeded"]
    assert len(succeeded) == 1 and succeeded[0].after == {"payment_failed_at": None, "grace_ends_at": None}


def test_a_second_failure_does_not_extend_the_grace_period(app, client, tenant, sdk, stripe_settings):
    _, invoice, _ = _past_due(sdk, tenant, stripe_settings)
    first = int(time.time()) - 3600
    post(client, event("invoice.payment_failed", invoice, created=first))
    post(client, event("invoice.payment_failed", invoice, created=first + 1800))
    row = billing_row(app, tenant)
    assert row.grace_ends_at == dt.datetime.fromtimestamp(first, dt.UTC) + dt.timedelta(days=7)


def test_a_late_failure_for_an_invoice_paid_since_is_ignored(app, client, tenant, sdk, stripe_settings):
    _, invoice, good = _past_due(sdk, tenant, stripe_settings)
    sdk.v1.customers.update(tenant.customer, params={"invoice_settings": {"default_payment_method": good}})
    sdk.v1.invoices.pay(invoice["id"])
    assert post(client, event("invoice.payment_failed", invoice)).status_code == 200
    assert billing_row(app, tenant).payment_failed_at is None


def test_a_late_paid_event_for_an_older_invoice_leaves_a_newer_failure(app, client, tenant, sdk, stripe_settings):
    _, invoice, _ = _past_due(sdk, tenant, stripe_settings)
    now = int(time.time())
    post(client, event("invoice.payment_failed", invoice, created=now))
    older_paid = next(i for i in sdk.v1.invoices.list(params={"customer": tenant.customer}).to_dict()["data"]
                      if i["status"] == "paid")
    assert post(client, event("invoice.paid", older_paid, created=now - 2 * 86400)).status_code == 200
    assert billing_row(app, tenant).payment_failed_at is not None


# Out of order


@pytest.mark.parametrize("late_created", ["before", "after"], ids=["late-older", "late-claims-newer"])
def test_a_late_updated_never_undoes_a_deleted(app, client, tenant, sdk, stripe_settings, late_created):
    sub = subscribe(sdk, tenant.customer, stripe_settings.price_monthly)
    at = int(time.time())
    stale_update = event("customer.subscription.updated", sub, created=at if late_created == "before" else at + 120)
    canceled = sdk.v1.subscriptions.cancel(sub["id"]).to_dict()
    assert post(client, event("customer.subscription.deleted", canceled, created=at + 60)).status_code == 200
    assert post(client, stale_update).status_code == 200
    row = billing_row(app, tenant)
    assert (row.status, row.plan) == ("canceled", "free")


def test_an_old_subscriptions_cancellation_does_not_end_its_successor(app, client, tenant, sdk, stripe_settings):
    old = subscribe(sdk, tenant.customer, stripe_settings.price_monthly)
    old_canceled = sdk.v1.subscriptions.cancel(old["id"]).to_dict()
    new = sdk.v1.subscriptions.create(params={"customer": tenant.customer,
                                              "items": [{"plan": stripe_settings.price_yearly}]}).to_dict()
    post(client, event("customer.subscription.created", new))
    assert post(client, event("customer.subscription.deleted", old_canceled)).status_code == 200
    row = billing_row(app, tenant)
    assert (row.stripe_subscription_id, row.status, row.billing_interval) == (new["id"], "active", "year")


def test_a_subscription_on_a_price_we_do_not_sell_keeps_the_plan_and_is_logged(
        app, client, tenant, sdk, stripe_settings, caplog):
    other = "price_other_" + secrets.token_hex(4)
    sdk.v1.plans.create(params={"id": other, "amount": 100, "currency": "usd", "interval": "month",
                                "product": {"name": "Something else"}})
    sub = subscribe(sdk, tenant.customer, other)
    caplog.set_level(logging.INFO)
    assert post(client, event("customer.subscription.created", sub)).status_code == 200
    row = billing_row(app, tenant)
    assert (row.status, row.plan, row.billing_interval) == ("active", "free", None)
    assert "not configured" in caplog.text


# Signatures and bodies


def _untouched(app, tenant, before: TenantBilling) -> None:  # type: ignore[no-untyped-def]
    after = billing_row(app, tenant)
    assert (after.status, after.plan, after.stripe_subscription_id) == (
        before.status, before.plan, before.stripe_subscription_id)
    assert events_kept(app, tenant) == 0 and audit_rows(app, tenant) == []


def test_a_bad_signature_is_refused_with_400_and_changes_nothing(app, client, tenant, sdk, stripe_settings):
    sub = subscribe(sdk, tenant.customer, stripe_settings.price_monthly)
    before = billing_row(app, tenant)
    body = json.dumps(event("customer.subscription.created", sub)).encode()
    assert post(client, body, secret="whsec_not_ours").status_code == 400
    tampered_header = sign_payload(body)
    assert post(client, body.replace(b'"active"', b'"trialing"'), signature=tampered_header).status_code == 400
    assert post(client, body, signature="").status_code == 400
    assert client.post("/webhooks/stripe", data=body, headers={"Content-Type": "application/json"}).status_code == 400
    assert post(client, body, signature="t=abc,v1=zz").status_code == 400
    _untouched(app, tenant, before)


def test_a_signature_older_than_300_seconds_is_refused(app, client, tenant, sdk, stripe_settings):
    sub = subscribe(sdk, tenant.customer, stripe_settings.price_monthly)
    before = billing_row(app, tenant)
    body = event("customer.subscription.created", sub)
    response = post(client, body, at=time.time() - 301)
    assert response.status_code == 400
    _untouched(app, tenant, before)
    assert post(client, body, at=time.time() - 250).status_code == 200  # inside the window it counts


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"object": "event"}', b"\xff\xfe{}",
                                  b'{"id": "evt_1", "object": "event", "type": "invoice.paid", "data": 3}'])
def test_a_signed_body_that_is_not_a_stripe_event_is_refused_with_400(app, client, stripe_settings, body):
    response = post(client, body)
    assert response.status_code == 400
    assert "JSON" in response.get_json()["message"]


def test_a_replayed_event_id_is_processed_once(app, client, tenant, sdk, stripe_settings):
    _, invoice, good = _past_due(sdk, tenant, stripe_settings)
    failed = event("invoice.payment_failed", invoice)
    post(client, failed)
    sdk.v1.customers.update(tenant.customer, params={"invoice_settings": {"default_payment_method": good}})
    paid = event("invoice.paid", sdk.v1.invoices.pay(invoice["id"]).to_dict())
    assert post(client, paid).status_code == 200
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:  # a new failure comes in
        row = session.execute(select(TenantBilling)).scalar_one()
        row.payment_failed_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        row.grace_ends_at = row.payment_failed_at + dt.timedelta(days=7)
    response = post(client, paid)  # Stripe's retry of the old "paid", freshly signed
    assert response.status_code == 200 and "already processed" in response.get_json()["message"]
    assert billing_row(app, tenant).payment_failed_at is not None
    assert [r.action for r in audit_rows(app, tenant)].count("billing.payment_succeeded") == 1
    assert events_kept(app, tenant) == 2


def test_an_event_for_a_customer_we_do_not_know_is_answered_200_logged_and_ignored(
        app, client, stripe_settings, caplog):
    caplog.set_level(logging.DEBUG)
    stranger = {"id": "sub_" + secrets.token_hex(6), "object": "subscription", "customer": "cus_nobody_we_know",
                "status": "active", "items": {"data": []}, "metadata": {"email": "someone@elsewhere.example"}}
    response = post(client, event("customer.subscription.created", stranger))
    assert response.status_code == 200 and response.get_json()["message"] == "No such customer."
    assert "for no customer of ours" in caplog.text
    assert "cus_nobody_we_know" not in caplog.text and "someone@elsewhere.example" not in caplog.text


def test_an_event_type_we_do_not_use_is_acknowledged(app, client, tenant, stripe_settings):
    response = post(client, event("customer.updated", {"id": tenant.customer, "object": "customer"}))
    assert response.status_code == 200
    assert events_kept(app, tenant) == 0


# Our own failure


def test_when_stripe_cannot_be_reached_the_event_fails_with_500_and_its_retry_is_processed(
        app, client, tenant, sdk, stripe_settings, monkeypatch):
    sub = subscribe(sdk, tenant.customer, stripe_settings.price_monthly)
    body = event("customer.subscription.created", sub)
    cfg = services_of(app).config
    monkeypatch.setattr(cfg, "STRIPE_API_BASE", "http://127.0.0.1:9")  # the discard port: nothing listens
    assert post(client, body).status_code == 500
    assert events_kept(app, tenant) == 0 and billing_row(app, tenant).status == "none"
    monkeypatch.setattr(cfg, "STRIPE_API_BASE", stripe_settings.url)
    assert post(client, body).status_code == 200
    assert billing_row(app, tenant).status == "active"


def test_when_the_database_refuses_the_event_fails_with_500_and_nothing_is_kept(
        app, client, tenant, sdk, stripe_settings, owner_engine):
    sub = subscribe(sdk, tenant.customer, stripe_settings.price_monthly)
    body = event("customer.subscription.created", sub)
    with owner_engine.begin() as conn:  # the app role's grants come through its group role (migrations/rls.py)
        conn.execute(text("REVOKE UPDATE ON tenant_billing FROM bi_app"))
    try:
        assert post(client, body).status_code == 500
    finally:
        with owner_engine.begin() as conn:
            conn.execute(text("GRANT UPDATE ON tenant_billing TO bi_app"))
    assert events_kept(app, tenant) == 0 and billing_row(app, tenant).status == "none"
    assert post(client, body).status_code == 200
    assert billing_row(app, tenant).status == "active"


# localstripe's own delivery


@pytest.fixture()
def live_url(app):  # type: ignore[no-untyped-def]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def _wait_for(check, seconds: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_localstripes_signed_deliveries_reach_a_live_app_and_drive_the_plan(
        app, tenant, sdk, stripe_settings, live_url):
    hook = "bi-live-" + uuid.uuid4().hex[:6]
    register_webhook(stripe_settings, live_url + "/webhooks/stripe", hook_id=hook,
                     events=("customer.subscription.created", "customer.subscription.deleted",
                             "invoice.payment_succeeded"))
    try:
        sub = subscribe(sdk, tenant.customer, stripe_settings.price_yearly)
        assert _wait_for(lambda: billing_row(app, tenant).status == "active")
        row = billing_row(app, tenant)
        assert (row.stripe_subscription_id, row.plan, row.billing_interval) == (sub["id"], "pro", "year")
        sdk.v1.subscriptions.cancel(sub["id"])
        assert _wait_for(lambda: billing_row(app, tenant).status == "canceled")
        assert billing_row(app, tenant).plan == "free"
        assert events_kept(app, tenant) >= 2
    finally:
        unregister_webhook(hook)


def test_without_a_signing_secret_outside_production_an_event_is_refused_as_unverifiable(app, client, caplog):
    assert not app.config["BI"].STRIPE_WEBHOOK_SECRET
    caplog.set_level(logging.WARNING)
    response = client.post("/webhooks/stripe", data=b'{"id": "evt_1", "type": "invoice.paid"}',
                           headers={"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"})
    assert response.status_code == 400  # not 503: nothing here is down, the event simply cannot be verified
    assert "no signing secret configured" in caplog.text
