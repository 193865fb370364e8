"""Receiving Mailgun's delivery events: is it really Mailgun (signature, timestamp, token used once), which send it
is about (``user-variables.bi_send`` -> tenant through ``bi_invoice_send_tenant``), and the send's delivery line.

Mailgun signs each POST in the body: ``signature.signature`` = hex HMAC-SHA256(key = the webhook signing key,
message = timestamp + token). Mailgun stops retrying on 200 and on 406 and retries anything else, so a forgery, a
stale or replayed signature gets 406 (nothing changes), an event about no send of ours gets 200 (ignored) and our
own failure a 5xx (Mailgun tries again); with no signing key configured (never in production, which refuses to start
without one) every event gets 406 and a logged reason. Nothing here logs the payload: it holds the recipients'
addresses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from app.sending.models import InvoiceSend, MailWebhookEvent
from app.services import Services
from app.tenancy import no_tenant_session, tenant_session

log = logging.getLogger(__name__)
_LOOKUP = text("select bi_invoice_send_tenant(:id)")
MAX_SKEW_SECONDS = 300
TOKEN_TTL_SECONDS = 2 * MAX_SKEW_SECONDS + 60  # a token older than the window is refused as stale anyway
REASON_MAX = 200
# Mailgun's event -> our delivery word; "failed" splits by severity (permanent is a bounce).
_EVENTS = {"delivered": "delivered", "complained": "complained", "accepted": "accepted"}


@dataclass(frozen=True)
class Outcome:
    """How an event was answered: HTTP status and a plain message (no content of the event)."""

    status: int
    message: str


def signature_of(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's signature of a webhook POST (hex)."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    signature, event = payload.get("signature"), payload.get("event-data")
    if not isinstance(signature, dict) or not isinstance(event, dict):
        return None
    if not all(isinstance(signature.get(k), str | int) and str(signature.get(k)) for k in
               ("timestamp", "token", "signature")):
        return None
    return payload


def _verify(services: Services, key: str, signature: dict[str, Any], now: float) -> Outcome | str:
    """The token's Redis key when Mailgun signed this POST just now, for the first time; else the refusal."""
    timestamp, token, given = (str(signature[k]) for k in ("timestamp", "token", "signature"))
    if not hmac.compare_digest(signature_of(key, timestamp, token).encode(), given.strip().lower().encode()):
        return Outcome(406, "The signature does not match.")
    try:
        signed_at = int(timestamp)
    except ValueError:
        return Outcome(406, "The signature's timestamp is not a number.")
    if abs(now - signed_at) > MAX_SKEW_SECONDS:
        return Outcome(406, "The signature is too old or from the future.")
    seen = f"bi:mailgun:token:{hashlib.sha256(token.encode()).hexdigest()[:40]}"
    if not services.redis.set(seen, b"1", nx=True, ex=TOKEN_TTL_SECONDS):
        return Outcome(406, "This signature was already used.")
    return seen


def _delivery_of(event: dict[str, Any]) -> str | None:
    name = event.get("event")
    if name == "failed":
        return "bounced" if event.get("severity") == "permanent" else "failed"
    return _EVENTS.get(name) if isinstance(name, str) else None


def _reason_of(event: dict[str, Any]) -> str | None:
    """Mailgun's words on why (e.g. "mailbox full"), trimmed; the first non-empty of its usual places."""
    status = event.get("delivery-status")
    places = []
    if isinstance(status, dict):
        places += [status.get("description"), status.get("message")]
    places.append(event.get("reason"))
    for value in places:
        if isinstance(value, str) and value.strip():
            words = " ".join(value.split())
            return words if len(words) <= REASON_MAX else words[:REASON_MAX - 1] + "…"
    return None


def _when(event: dict[str, Any], now: float) -> dt.datetime:
    stamp = event.get("timestamp")
    seconds = float(stamp) if isinstance(stamp, int | float) and not isinstance(stamp, bool) else now
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (ValueError, OverflowError, OSError):  # NaN, or beyond the calendar
        return dt.datetime.fromtimestamp(now, dt.UTC)


def _send_id(event: dict[str, Any]) -> uuid.UUID | None:
    variables = event.get("user-variables")
    raw = variables.get("bi_send") if isinstance(variables, dict) else None
    try:
        return uuid.UUID(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def tenant_of_send(services: Services, send_id: uuid.UUID) -> str | None:
    """The tenant a send belongs to, through the one pre-tenant function; None when there is no such send."""
    with no_tenant_session(services.session_factory) as session:
        found = session.execute(_LOOKUP, {"id": send_id}).scalar()
    return str(found) if found else None


def receive(services: Services, body: bytes, *, now: float | None = None) -> Outcome:
    """Verify one webhook POST and record its event on the send it is about."""
    now = time.time() if now is None else now
    payload = _parse(body)
    if payload is None:
        return Outcome(400, "The body is not the JSON Mailgun sends.")
    key = services.config.MAILGUN_WEBHOOK_SIGNING_KEY
    if not key:
        # Production refuses to start without the key, so this is a development or test setup: a 503 would have
        # Mailgun retry for 8 hours what can never be verified here; 406 tells it to stop.
        status = 503 if services.config.is_production else 406
        log.warning("mailgun webhook refused (%d): MAILGUN_WEBHOOK_SIGNING_KEY is not set, so no event can be "
                    "verified", status, extra={"event": "sending.hook_no_key"})
        return Outcome(status, "Delivery events cannot be verified here: no webhook signing key is configured.")
    verified = _verify(services, key, payload["signature"], now)
    if isinstance(verified, Outcome):
        log.info("mailgun webhook refused", extra={"event": "sending.hook_refused"})
        return verified
    try:
        return _record(services, payload["event-data"], now)
    except Exception:
        services.redis.delete(verified)  # not recorded: Mailgun's retry of this POST must get through
        raise


def _record(services: Services, event: dict[str, Any], now: float) -> Outcome:
    delivery, send_id = _delivery_of(event), _send_id(event)
    event_id = event.get("id")
    if delivery is None or send_id is None or not isinstance(event_id, str) or not 0 < len(event_id) <= 255:
        return Outcome(200, "Not an event we keep.")
    tenant_id = tenant_of_send(services, send_id)
    if tenant_id is None:
        log.info("mailgun event for no send of ours", extra={"event": "sending.hook_unknown_send"})
        return Outcome(200, "No such send.")
    with tenant_session(tenant_id, services.session_factory) as session:
        fresh = session.execute(insert(MailWebhookEvent).values(tenant_id=uuid.UUID(tenant_id), event_id=event_id)
                                .on_conflict_do_nothing().returning(MailWebhookEvent.event_id)).scalar()
        if fresh is None:
            return Outcome(200, "This event was already recorded.")
        row = session.execute(select(InvoiceSend).where(InvoiceSend.id == send_id).with_for_update()).scalar_one()
        at = _when(event, now)
        if _supersedes(row, delivery, at):
            row.delivery, row.delivery_at = delivery, at
            row.delivery_reason = None if delivery in ("delivered", "accepted") else _reason_of(event)
    log.info("mailgun event recorded", extra={"event": "sending.hook_recorded"})
    return Outcome(200, "Recorded.")


def _supersedes(row: InvoiceSend, delivery: str, at: dt.datetime) -> bool:
    """Whether an event replaces the send's delivery line: a later word wins; "accepted" never replaces an outcome
    (Mailgun sends it first, but webhooks may arrive in any order)."""
    if row.delivery is None:
        return True
    if delivery == "accepted":
        return row.delivery == "accepted" and (row.delivery_at is None or at >= row.delivery_at)
    if row.delivery == "accepted":
        return True
    return row.delivery_at is None or at >= row.delivery_at
