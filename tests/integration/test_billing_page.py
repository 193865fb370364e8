"""The billing page (owners only): each state shown as it is (trial, Pro monthly, past due, Free), Upgrade through
Stripe Checkout with the workspace's Stripe customer made once (concurrent clicks included), Manage billing through
the Customer Portal, Stripe not configured, Stripe failing; then a completed checkout landing Pro through the webhook.
Stripe is localstripe behind the session fake (tests/billing_sessions_fake.py), driven by the app's own SDK calls."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.billing.models import TenantBilling
from app.review.models import Sweep
from app.services import services_of
from app.tenancy import tenant_session
from app.users.models import User
from tests.billing_sessions_fake import Price, SessionsFake
from tests.billing_stripe import StripeSettings
from tests.conftest import csrf_of, sign_in
from tests.integration.signin_helpers import audit_rows

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(autouse=True)
def _clean(redis_conn):  # type: ignore[no-untyped-def]
    return redis_conn


@pytest.fixture()
def sessions_fake(app, stripe_settings: StripeSettings, monkeypatch) -> Iterator[SessionsFake]:
    """Checkout and Portal sessions answered by the fake, everything else forwarded to localstripe; the events a
    completed checkout sends go to the app's webhook through a test client."""

    def deliver(payload: bytes, signature: str) -> int:
        return app.test_client().post("/webhooks/stripe", data=payload, headers={
            "Stripe-Signature": signature, "Content-Type": "application/json"}).status_code

    fake = SessionsFake(stripe_settings.url, stripe_settings.secret_key, {
        stripe_settings.price_monthly: Price(stripe_settings.price_monthly, "month", 2900),
        stripe_settings.price_yearly: Price(stripe_settings.price_yearly, "year", 29000)},
        webhook_secret=stripe_settings.webhook_secret, deliver=deliver)
    monkeypatch.setattr(services_of(app).config, "STRIPE_API_BASE", fake.url)
    yield fake
    fake.stop()


def _billing(app, tenant_id, **values: Any) -> None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as s:
        row = s.get(TenantBilling, tenant_id)
        for name, value in values.items():
            setattr(row, name, value)


def _row(app, tenant_id) -> TenantBilling:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as s:
        row = s.get(TenantBilling, tenant_id)
        s.expunge(row)
        return row


def _user(app, tenant, role: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    uid = uuid.uuid4()
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        s.add(User(id=uid, tenant_id=tenant.id, email=f"{role}-{uid.hex[:6]}@x.example", name=role, role=role,
                   active=True))
    return uid


def _page(client) -> str:  # type: ignore[no-untyped-def]
    response = client.get("/settings/billing/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _post(client, path: str, **form: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={"csrf_token": csrf_of(client), **form})


# --- the page in each state --------------------------------------------------------------------------------------

def test_a_trial_shows_pro_its_end_date_days_left_and_both_upgrade_buttons(app, client, make_tenant):
    t = make_tenant()
    _billing(app, t.id, plan="pro", status="trialing", trial_ends_at=NOW + dt.timedelta(days=9, hours=2))
    sign_in(client, t)
    page = _page(client)
    assert "<strong>Pro</strong>" in page and ">Trial</span>" in page
    assert "Trial ends" in page and "(10 days left)" in page
    assert "Upgrade to Pro, monthly" in page and "Upgrade to Pro, yearly" in page
    assert "Manage billing" not in page  # no Stripe customer yet
    assert "1 (no limit)" in page and "Every open invoice" in page
    assert "Stripe is not set up" in page and "disabled" in page  # the test config has no Stripe keys


def test_pro_monthly_shows_its_renewal_date_and_manage_billing_instead_of_upgrade(app, client, make_tenant):
    t = make_tenant()
    renews = dt.datetime(2027, 1, 14, 12, tzinfo=dt.UTC)
    _billing(app, t.id, plan="pro", status="active", billing_interval="month", stripe_customer_id="cus_m" +
             uuid.uuid4().hex[:10], stripe_subscription_id="sub_x", current_period_end=renews)
    sign_in(client, t)
    page = _page(client)
    assert "<strong>Pro</strong>, billed monthly" in page and ">Active</span>" in page
    assert "Renews</dt><dd>14 Jan 2027" in page
    assert "Upgrade to Pro" not in page and "Manage billing" in page and "Manage your subscription" in page


def test_a_cancelled_subscription_says_when_it_ends(app, client, make_tenant):
    t = make_tenant()
    _billing(app, t.id, plan="pro", status="active", billing_interval="year", stripe_customer_id="cus_c" +
             uuid.uuid4().hex[:10], stripe_subscription_id="sub_y", cancel_at_period_end=True,
             current_period_end=dt.datetime(2027, 3, 2, 12, tzinfo=dt.UTC))
    sign_in(client, t)
    page = _page(client)
    assert "billed yearly" in page and "Ends</dt><dd>02 Mar 2027 (cancelled: Free after that)" in page


def test_past_due_within_grace_shows_the_banner_with_the_grace_end_and_keeps_pro(app, client, make_tenant):
    t = make_tenant()
    _billing(app, t.id, plan="pro", status="past_due", billing_interval="month", stripe_customer_id="cus_p" +
             uuid.uuid4().hex[:10], stripe_subscription_id="sub_p", payment_failed_at=NOW - dt.timedelta(days=2),
             grace_ends_at=dt.datetime(2030, 5, 20, 12, tzinfo=dt.UTC))
    sign_in(client, t)
    page = _page(client)
    assert ">Payment failed</span>" in page and "<strong>Pro</strong>" in page
    assert "Your last payment failed. Pro stays on until 20 May 2030" in page
    assert "Manage billing" in page


def test_past_due_after_grace_says_free_limits_apply(app, client, make_tenant):
    t = make_tenant()
    _billing(app, t.id, plan="pro", status="past_due", stripe_customer_id="cus_g" + uuid.uuid4().hex[:10],
             stripe_subscription_id="sub_g", grace_ends_at=NOW - dt.timedelta(hours=1))
    sign_in(client, t)
    page = _page(client)
    assert "<strong>Free</strong>" in page and "Free limits apply until it is paid" in page


def test_free_shows_seats_and_the_last_sweep_against_the_free_limits(app, client, make_tenant):
    t = make_tenant()
    _billing(app, t.id, plan="free", status="canceled")
    _user(app, t, "admin")
    _user(app, t, "reviewer")
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        s.add(Sweep(tenant_id=t.id, kind="full", outcome="ok", invoices_seen=31, finished_at=NOW))
    sign_in(client, t)
    page = _page(client)
    assert "<strong>Free</strong>" in page and ">Canceled</span>" in page
    assert '<span class="warn">3 of 3</span>' in page
    assert "Up to 25 open invoices (the most recent)" in page and "Last sweep saw 31 open invoices: 6 over" in page
    assert "Upgrade to Pro, monthly" in page


def test_an_ended_trial_says_free_limits_apply_and_nothing_was_deleted(app, client, make_tenant):
    t = make_tenant()
    _billing(app, t.id, plan="pro", status="trialing", trial_ends_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    sign_in(client, t)
    page = _page(client)
    assert "<strong>Free</strong>" in page and "Your Pro trial ended on 05 Jan 2026" in page


@pytest.mark.parametrize("role", ["admin", "billing_manager", "reviewer", "viewer"])
def test_only_owners_reach_the_billing_page_and_its_actions(app, client, make_tenant, role):
    t = make_tenant()
    sign_in(client, t, _user(app, t, role))
    assert client.get("/settings/billing/").status_code == 403
    assert _post(client, "/settings/billing/checkout", interval="month").status_code == 403
    assert _post(client, "/settings/billing/portal").status_code == 403
    assert "/settings/billing/" not in client.get("/").get_data(as_text=True)  # not in their Settings menu


def test_the_owner_finds_billing_in_the_settings_menu(app, client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    assert 'href="/settings/billing/" aria-current="page">Billing</a>' in _page(client)


# --- Stripe not configured, Stripe failing ---------------------------------------------------------------------

def test_without_stripe_settings_upgrade_and_portal_answer_with_the_reason_not_a_500(app, client, make_tenant):
    t = make_tenant()
    _billing(app, t.id, stripe_customer_id="cus_n" + uuid.uuid4().hex[:10])
    sign_in(client, t)
    page = _page(client)
    assert page.count("disabled aria-describedby=\"billing-off\"") == 3  # monthly, yearly, manage
    for path in ("/settings/billing/checkout", "/settings/billing/portal"):
        response = _post(client, path, interval="month")
        assert response.status_code == 503
        assert "Stripe is not set up on this server" in response.get_data(as_text=True)
    assert audit_rows(app, t.id, "billing.checkout_started") == []


def test_a_stripe_error_is_a_message_on_the_page_and_the_customer_is_kept(app, client, make_tenant, sessions_fake):
    t = make_tenant()
    sign_in(client, t)
    sessions_fake.failing = 500
    response = _post(client, "/settings/billing/checkout", interval="month")
    sessions_fake.failing = None
    assert response.status_code == 502
    assert "Stripe could not start the checkout just now. Nothing was charged" in response.get_data(as_text=True)
    assert audit_rows(app, t.id, "billing.checkout_started") == []
    customer = _row(app, t.id).stripe_customer_id
    assert customer and customer.startswith("cus_")
    assert _post(client, "/settings/billing/checkout", interval="month").status_code == 303
    assert _row(app, t.id).stripe_customer_id == customer
    assert sessions_fake.requests.count(("POST", "/v1/customers")) == 1


def test_stripe_unreachable_is_a_message_too(app, client, make_tenant, sessions_fake, monkeypatch):
    t = make_tenant()
    sign_in(client, t)
    monkeypatch.setattr(services_of(app).config, "STRIPE_API_BASE", "http://127.0.0.1:9")
    response = _post(client, "/settings/billing/checkout", interval="year")
    assert response.status_code == 502
    assert "Stripe could not set up your billing account just now" in response.get_data(as_text=True)
    assert _row(app, t.id).stripe_customer_id is None


# --- Upgrade ---------------------------------------------------------------------------------------------------

def test_upgrade_makes_the_customer_once_and_sends_the_owner_to_checkout(app, client, make_tenant, sessions_fake,
                                                                        stripe_settings):
    t = make_tenant(name="Northwind IT")
    sign_in(client, t)
    first = _post(client, "/settings/billing/checkout", interval="month")
    assert first.status_code == 303
    session_id = sessions_fake.session_of_url(first.headers["Location"])
    made = sessions_fake.checkouts[session_id]
    assert first.headers["Location"] == made["url"]
    customer_id = _row(app, t.id).stripe_customer_id
    assert made["customer"] == customer_id and made["mode"] == "subscription"
    assert made["_price"] == stripe_settings.price_monthly
    assert made["success_url"] == "http://localhost/settings/billing/?checkout=success"
    assert made["cancel_url"] == "http://localhost/settings/billing/?checkout=canceled"
    assert made["client_reference_id"] == str(t.id) and made["metadata"] == {"tenant_id": str(t.id)}
    customer = sessions_fake.sdk().v1.customers.retrieve(customer_id)
    assert customer.email == t.owner_email and customer.name == "Northwind IT"
    assert customer.metadata.to_dict() == {"tenant_id": str(t.id)}

    second = _post(client, "/settings/billing/checkout", interval="year")
    yearly = sessions_fake.checkouts[sessions_fake.session_of_url(second.headers["Location"])]
    assert yearly["customer"] == customer_id and yearly["_price"] == stripe_settings.price_yearly
    assert sessions_fake.requests.count(("POST", "/v1/customers")) == 1
    rows = audit_rows(app, t.id, "billing.checkout_started")
    assert [r.after["interval"] for r in rows] == ["month", "year"]
    assert {r.actor_id for r in rows} == {str(t.owner_id)}


def test_concurrent_upgrade_clicks_make_one_customer(app, make_tenant, sessions_fake):
    t = make_tenant()
    clients = [app.test_client() for _ in range(4)]
    tokens = []
    for c in clients:
        sign_in(c, t)
        tokens.append(csrf_of(c))
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def click(c, token: str) -> None:  # type: ignore[no-untyped-def]
        start.wait()
        statuses.append(c.post("/settings/billing/checkout", data={"csrf_token": token, "interval": "month"})
                        .status_code)

    threads = [threading.Thread(target=click, args=pair) for pair in zip(clients, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [303] * 4
    assert sessions_fake.requests.count(("POST", "/v1/customers")) == 1
    customer = _row(app, t.id).stripe_customer_id
    assert {s["customer"] for s in sessions_fake.checkouts.values()} == {customer}


def test_an_unknown_interval_is_refused_with_a_message(app, client, make_tenant, sessions_fake):
    t = make_tenant()
    sign_in(client, t)
    response = _post(client, "/settings/billing/checkout", interval="weekly")
    assert response.status_code == 400 and "Choose monthly or yearly billing." in response.get_data(as_text=True)
    assert sessions_fake.requests == []


def test_a_live_subscription_is_not_sold_twice(app, client, make_tenant, sessions_fake):
    t = make_tenant()
    _billing(app, t.id, plan="pro", status="active", stripe_customer_id="cus_l" + uuid.uuid4().hex[:10],
             stripe_subscription_id="sub_live")
    sign_in(client, t)
    response = _post(client, "/settings/billing/checkout", interval="month")
    assert response.status_code == 409
    assert "already has a subscription: use Manage billing" in response.get_data(as_text=True)
    assert sessions_fake.checkouts == {}


def test_coming_back_from_checkout_says_the_plan_updates_when_stripe_confirms(app, client, make_tenant):
    t = make_tenant()
    _billing(app, t.id, plan="pro", status="trialing", trial_ends_at=NOW + dt.timedelta(days=3))
    sign_in(client, t)
    page = client.get("/settings/billing/?checkout=success").get_data(as_text=True)
    assert "Thanks: your plan updates when Stripe confirms the payment" in page
    assert "Checkout was canceled. Nothing changed" in client.get("/settings/billing/?checkout=canceled").get_data(
        as_text=True)


def test_a_paid_checkout_lands_pro_on_the_page_through_the_webhook(app, client, make_tenant, sessions_fake):
    t = make_tenant()
    _billing(app, t.id, plan="pro", status="trialing", trial_ends_at=NOW + dt.timedelta(days=3))
    sign_in(client, t)
    location = _post(client, "/settings/billing/checkout", interval="year").headers["Location"]
    sessions_fake.complete(sessions_fake.session_of_url(location))
    assert sessions_fake.delivered == [("customer.subscription.created", 200), ("checkout.session.completed", 200)]
    row = _row(app, t.id)
    assert (row.plan, row.status, row.billing_interval) == ("pro", "active", "year")
    assert row.stripe_subscription_id and row.current_period_end is not None
    page = client.get("/settings/billing/?checkout=success").get_data(as_text=True)
    assert "Thanks: you are on Pro." in page and "billed yearly" in page and ">Active</span>" in page
    assert "Upgrade to Pro" not in page and "Manage billing" in page


# --- Manage billing ----------------------------------------------------------------------------------------------

def test_manage_billing_opens_the_portal_for_the_customer_with_a_way_back(app, client, make_tenant, sessions_fake):
    t = make_tenant()
    sign_in(client, t)
    _post(client, "/settings/billing/checkout", interval="month")
    customer_id = _row(app, t.id).stripe_customer_id
    response = _post(client, "/settings/billing/portal")
    assert response.status_code == 303
    [portal] = sessions_fake.portals.values()
    assert response.headers["Location"] == portal["url"]
    assert portal["customer"] == customer_id and portal["return_url"] == "http://localhost/settings/billing/"
    [row] = audit_rows(app, t.id, "billing.portal_opened")
    assert row.actor_id == str(t.owner_id) and row.after == {"portal_session": portal["id"]}


def test_manage_billing_without_a_customer_says_to_upgrade_first(app, client, make_tenant, sessions_fake):
    t = make_tenant()
    sign_in(client, t)
    response = _post(client, "/settings/billing/portal")
    assert response.status_code == 409
    assert "There is no Stripe billing account yet: upgrade first" in response.get_data(as_text=True)
    assert sessions_fake.portals == {}


def test_the_billing_page_lets_its_forms_go_on_to_stripe_and_nowhere_else(app, client, make_tenant, sessions_fake):
    t = make_tenant()
    sign_in(client, t)
    csp = client.get("/settings/billing/").headers["Content-Security-Policy"]
    assert (f"form-action 'self' https://checkout.stripe.com https://billing.stripe.com {sessions_fake.url};"
            in csp)  # the fake plays Stripe's hosted pages here, at STRIPE_API_BASE's origin
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    other = client.get("/settings/workspace/").headers["Content-Security-Policy"]
    assert "form-action 'self';" in other and "stripe" not in other
