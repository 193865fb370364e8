"""Mailgun's delivery webhook end to end through the app: signature, timestamp and token checks, the pre-tenant
lookup of the send, dedupe by event id, out-of-order events, and the send's line on the invoice (_delivery.html)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import time
import uuid

import pytest
from flask import render_template
from sqlalchemy import select

from app.sending import webhook
from app.sending.models import InvoiceSend, MailWebhookEvent
from app.sending.webhook import signature_of
from app.services import services_of
from app.tenancy import tenant_session

KEY = "whk-test-" + "s" * 24
ADDRESS = "ap@client.example"


@pytest.fixture()
def signing_key(app, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services_of(app).config, "MAILGUN_WEBHOOK_SIGNING_KEY", KEY)
    return KEY


@pytest.fixture()
def tenant(make_tenant, redis_conn):  # type: ignore[no-untyped-def]
    return make_tenant("Delivery Co")


def make_send(app, tenant, **fields) -> uuid.UUID:  # type: ignore[no-untyped-def]
    values = {"invoice_id": 3, "invoice_number": "INV-3", "kind": "invoice", "status": "sent",
              "provider_message_id": "<20261103.1@mg.example>", "delivery": "accepted",
              "sent_at": dt.datetime(2026, 11, 3, 14, 2, tzinfo=dt.UTC),
              "delivery_at": dt.datetime(2026, 11, 3, 14, 2, tzinfo=dt.UTC)}
    values.update(fields)
    send_id = uuid.uuid4()
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.add(InvoiceSend(id=send_id, tenant_id=tenant.id, **values))
    return send_id


def row_of(app, tenant, send_id: uuid.UUID) -> InvoiceSend:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        row = session.execute(select(InvoiceSend).where(InvoiceSend.id == send_id)).scalar_one()
        session.expunge(row)
        return row


def signature(key: str = KEY, at: float | None = None, token: str | None = None) -> dict:
    timestamp = str(int(time.time() if at is None else at))
    token = token or secrets.token_hex(25)
    return {"timestamp": timestamp, "token": token, "signature": signature_of(key, timestamp, token)}


def event(send_id: uuid.UUID | str | None, name: str = "delivered", *, at: float | None = None,
          event_id: str | None = None, **extra) -> dict:
    data = {"event": name, "id": event_id or secrets.token_urlsafe(16), "timestamp": time.time() if at is None else at,
            "recipient": ADDRESS, "message": {"headers": {"message-id": "20261103.1@mg.example", "to": ADDRESS}},
            "user-variables": {"bi_send": str(send_id)} if send_id is not None else {}}
    data.update(extra)
    return data


def post(client, body: dict | bytes):  # type: ignore[no-untyped-def]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/webhooks/mailgun", data=raw, headers={"Content-Type": "application/json"})


def test_a_delivered_event_marks_the_send_delivered_at_mailguns_time(app, client, tenant, signing_key):
    send_id = make_send(app, tenant)
    at = time.time() - 5
    response = post(client, {"signature": signature(), "event-data": event(send_id, at=at)})
    assert response.status_code == 200
    row = row_of(app, tenant, send_id)
    assert row.delivery == "delivered" and row.delivery_reason is None
    assert row.delivery_at is not None and abs(row.delivery_at.timestamp() - at) < 0.01


def test_a_permanent_failure_is_a_bounce_with_mailguns_reason_and_a_temporary_one_a_failure(
        app, client, tenant, signing_key):
    bounced, deferred = make_send(app, tenant), make_send(app, tenant)
    status = {"code": 552, "message": "  5.2.2 mailbox\n full  ", "description": ""}
    assert post(client, {"signature": signature(), "event-data": event(
        bounced, "failed", severity="permanent", reason="bounce", **{"delivery-status": status})}).status_code == 200
    assert post(client, {"signature": signature(), "event-data": event(
        deferred, "failed", severity="temporary", **{"delivery-status": {"message": "try again later"}})}
    ).status_code == 200
    row = row_of(app, tenant, bounced)
    assert (row.delivery, row.delivery_reason) == ("bounced", "5.2.2 mailbox full")
    row = row_of(app, tenant, deferred)
    assert (row.delivery, row.delivery_reason) == ("failed", "try again later")


def test_a_complaint_is_recorded(app, client, tenant, signing_key):
    send_id = make_send(app, tenant)
    assert post(client, {"signature": signature(), "event-data": event(send_id, "complained")}).status_code == 200
    assert row_of(app, tenant, send_id).delivery == "complained"


def test_a_bad_signature_is_refused_with_406_and_changes_nothing(app, client, tenant, signing_key):
    send_id = make_send(app, tenant)
    forged = signature(key="not-the-key")
    response = post(client, {"signature": forged, "event-data": event(send_id)})
    assert response.status_code == 406
    tampered = signature()
    tampered["token"] = tampered["token"][::-1]
    assert post(client, {"signature": tampered, "event-data": event(send_id)}).status_code == 406
    assert row_of(app, tenant, send_id).delivery == "accepted"


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_stale_or_future_timestamp_is_refused_with_406(app, client, tenant, signing_key, offset):
    send_id = make_send(app, tenant)
    response = post(client, {"signature": signature(at=time.time() + offset), "event-data": event(send_id)})
    assert response.status_code == 406
    assert row_of(app, tenant, send_id).delivery == "accepted"


def test_a_replayed_token_is_refused_even_with_a_new_event(app, client, tenant, signing_key):
    first, second = make_send(app, tenant), make_send(app, tenant)
    signed = signature()
    assert post(client, {"signature": signed, "event-data": event(first)}).status_code == 200
    response = post(client, {"signature": signed, "event-data": event(second, "complained")})
    assert response.status_code == 406
    assert row_of(app, tenant, second).delivery == "accepted"


def test_an_event_id_counts_once(app, client, tenant, signing_key):
    send_id = make_send(app, tenant)
    assert post(client, {"signature": signature(), "event-data": event(send_id, event_id="evt-1")}).status_code == 200
    again = post(client, {"signature": signature(), "event-data": event(
        send_id, "failed", severity="permanent", event_id="evt-1", at=time.time() + 60)})
    assert again.status_code == 200 and "already" in again.get_json()["message"]
    assert row_of(app, tenant, send_id).delivery == "delivered"
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        assert session.execute(select(MailWebhookEvent.event_id)).scalars().all() == ["evt-1"]


def test_an_event_for_no_send_of_ours_is_answered_200_and_ignored_without_logging_its_content(
        app, client, tenant, signing_key, caplog):
    caplog.set_level(logging.DEBUG)
    for send_id in (uuid.uuid4(), None, "not-a-uuid"):
        response = post(client, {"signature": signature(), "event-data": event(send_id)})
        assert response.status_code == 200
    assert ADDRESS not in caplog.text


def test_another_tenants_send_is_updated_in_its_own_tenant_only(app, client, make_tenant, tenant, signing_key):
    other = make_tenant("Other Co")
    mine, theirs = make_send(app, tenant), make_send(app, other)
    assert post(client, {"signature": signature(), "event-data": event(theirs, "complained")}).status_code == 200
    assert row_of(app, other, theirs).delivery == "complained"
    assert row_of(app, tenant, mine).delivery == "accepted"


def test_an_older_event_arriving_late_does_not_overwrite_a_later_one(app, client, tenant, signing_key):
    send_id = make_send(app, tenant)
    now = time.time()
    assert post(client, {"signature": signature(), "event-data": event(send_id, at=now)}).status_code == 200
    late = event(send_id, "failed", severity="temporary", at=now - 120, **{"delivery-status": {"message": "busy"}})
    assert post(client, {"signature": signature(), "event-data": late}).status_code == 200
    assert post(client, {"signature": signature(), "event-data": event(send_id, "accepted", at=now + 5)}
                ).status_code == 200
    row = row_of(app, tenant, send_id)
    assert (row.delivery, row.delivery_reason) == ("delivered", None)
    assert row.delivery_at is not None and abs(row.delivery_at.timestamp() - now) < 0.01
    later = event(send_id, "complained", at=now + 60)
    assert post(client, {"signature": signature(), "event-data": later}).status_code == 200
    assert row_of(app, tenant, send_id).delivery == "complained"


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"text"', json.dumps({"event-data": {}}).encode(),
                                  json.dumps({"signature": {"timestamp": "1"}, "event-data": {}}).encode(),
                                  b"\xff\xfe"])
def test_a_malformed_body_is_refused_with_400(client, tenant, signing_key, body):
    assert post(client, body).status_code == 400


def test_without_a_signing_key_events_are_refused_with_406_so_mailgun_stops_and_the_log_says_why(
        app, client, tenant, monkeypatch, caplog):
    monkeypatch.setattr(services_of(app).config, "MAILGUN_WEBHOOK_SIGNING_KEY", "")
    send_id = make_send(app, tenant)
    with caplog.at_level(logging.WARNING, logger="app.sending.webhook"):
        response = post(client, {"signature": signature(), "event-data": event(send_id)})
    # Not a 5xx: Mailgun would retry for 8 hours what this setup can never verify (production needs the key).
    assert response.status_code == 406 and "no webhook signing key" in response.get_json()["message"]
    assert row_of(app, tenant, send_id).delivery == "accepted"
    reasons = [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "sending.hook_no_key"]
    assert reasons and "MAILGUN_WEBHOOK_SIGNING_KEY is not set" in reasons[0]


def test_our_own_failure_is_a_5xx_and_mailguns_retry_of_the_same_post_gets_through(
        app, client, tenant, signing_key, monkeypatch):
    send_id = make_send(app, tenant)
    body = {"signature": signature(), "event-data": event(send_id)}
    real = webhook.tenant_of_send

    def database_down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("database went away")

    monkeypatch.setattr(webhook, "tenant_of_send", database_down)
    assert post(client, body).status_code >= 500
    monkeypatch.setattr(webhook, "tenant_of_send", real)
    assert post(client, body).status_code == 200
    assert row_of(app, tenant, send_id).delivery == "delivered"


def test_the_webhook_needs_no_csrf_token_or_sign_in(client, tenant, signing_key):
    response = post(client, {"signature": signature(), "event-data": event(uuid.uuid4())})
    assert response.status_code == 200


def _html(app, send: InvoiceSend, to) -> str:  # type: ignore[no-untyped-def]
    with app.test_request_context("/"):
        return render_template("sending/_delivery.html", send=send, to=to)


def _line(app, send: InvoiceSend, to) -> str:  # type: ignore[no-untyped-def]
    """The line as a person reads it (tags dropped, entities kept)."""
    return " ".join(re.sub(r"<[^>]+>", "", _html(app, send, to)).split())


def test_the_delivery_line_says_what_happened(app):
    at = dt.datetime(2026, 11, 3, 14, 2, tzinfo=dt.UTC)
    sent = InvoiceSend(id=uuid.uuid4(), kind="invoice", status="sent", sent_at=at, delivery="delivered")
    assert "Sent to ap@client.example 3 Nov 14:02" in _line(app, sent, [ADDRESS])
    assert "· delivered" in _line(app, sent, [ADDRESS])
    bounced = InvoiceSend(id=uuid.uuid4(), kind="invoice", status="sent", sent_at=at, delivery="bounced",
                          delivery_reason="mailbox full")
    assert "bounced: mailbox full" in _line(app, bounced, "ap@client.example, boss@client.example")
    reminder = InvoiceSend(id=uuid.uuid4(), kind="reminder", status="sent", sent_at=at)
    assert "Reminder sent to ap@client.example" in _line(app, reminder, [ADDRESS])
    queued = InvoiceSend(id=uuid.uuid4(), kind="invoice", status="queued")
    assert "queued" in _line(app, queued, [ADDRESS])
    failed = InvoiceSend(id=uuid.uuid4(), kind="invoice", status="failed",
                         reason="Mailgun refused the message (HTTP 500)")
    assert "failed: Mailgun refused the message (HTTP 500)" in _line(app, failed, [ADDRESS])
    skipped = InvoiceSend(id=uuid.uuid4(), kind="invoice", status="skipped", reason="no billing contact")
    assert "skipped: no billing contact" in _line(app, skipped, [])


def test_the_delivery_line_escapes_addresses_and_reasons(app):
    send = InvoiceSend(id=uuid.uuid4(), kind="invoice", status="sent", delivery="bounced",
                       delivery_reason="<script>alert(1)</script>")
    html = _html(app, send, ["<b>x</b>@client.example"])
    assert "<script>" not in html and "<b>" not in html and "&lt;script&gt;" in html
