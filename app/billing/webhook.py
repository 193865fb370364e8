"""Receiving Stripe's webhook: is it really Stripe (the SDK's signature check on the raw body, 300 s tolerance),
which workspace it is about (the customer id -> tenant through ``bi_billing_customer_tenant``), each event id
once (``stripe_events``), then ``app.billing.events.apply``.

Stripe retries anything but a 2xx for days, so: a forgery, a stale signature or a body that is not an event gets
400 (nothing changes; Stripe's own deliveries never look like that), an event about no customer of ours 200
(logged, ignored), and our own failure 500 (rolled back, the event id not kept, so the retry is processed).
Nothing here logs the payload: it holds customers' names and emails.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from app.billing import events
from app.billing.gateway import stripe_client
from app.billing.models import StripeEvent
from app.services import Services
from app.tenancy import no_tenant_session, tenant_session

log = logging.getLogger(__name__)
_LOOKUP = text("select bi_billing_customer_tenant(:c)")
TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class Outcome:
    """How an event was answered: HTTP status and a plain message (no content of the event)."""

    status: int
    message: str


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(event, dict) or event.get("object") != "event":
        return None
    event_id, kind = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255 or not isinstance(kind, str):
        return None
    return event if isinstance(event.get("data"), dict) else None


def tenant_of_customer(services: Services, customer_id: str) -> str | None:
    """The tenant a Stripe customer belongs to, through the one pre-tenant function; None when none does."""
    with no_tenant_session(services.session_factory) as session:
        found = session.execute(_LOOKUP, {"c": customer_id}).scalar()
    return str(found) if found else None


def receive(services: Services, body: bytes, signature: str | None) -> Outcome:
    """Verify one webhook POST and apply its event to the workspace it is about."""
    cfg = services.config
    if not cfg.STRIPE_WEBHOOK_SECRET:
        log.warning("stripe webhook refused: no signing secret configured", extra={"event": "billing.hook_no_key"})
        # Production refuses to start without the secret; elsewhere an unverifiable event is refused like a bad
        # signature (400: nothing changes), not answered as an outage.
        return Outcome(503 if cfg.is_production else 400, "Stripe events cannot be verified here: no webhook "
                                                          "signing secret is configured.")
    try:
        stripe.WebhookSignature.verify_header(body, signature, cfg.STRIPE_WEBHOOK_SECRET, TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        log.info("stripe webhook refused: signature", extra={"event": "billing.hook_refused"})
        return Outcome(400, "The signature does not match, or is too old.")
    except UnicodeDecodeError:
        return Outcome(400, "The body is not the JSON Stripe sends.")
    event = _parse(body)
    if event is None:
        return Outcome(400, "The body is not the JSON Stripe sends.")
    if event["type"] not in events.HANDLED:
        return Outcome(200, "Not an event we use.")
    customer = events.customer_of(event)
    try:
        tenant_id = tenant_of_customer(services, customer) if customer else None
        if tenant_id is None:
            log.info("stripe event for no customer of ours", extra={"event": "billing.hook_unknown_customer"})
            return Outcome(200, "No such customer.")
        return _process(services, tenant_id, event)
    except Exception:
        log.exception("stripe event not processed", extra={"event": "billing.hook_failed"})
        return Outcome(500, "The event could not be processed; Stripe will send it again.")


def _process(services: Services, tenant_id: str, event: dict[str, Any]) -> Outcome:
    cfg = services.config
    prices = events.Prices(cfg.STRIPE_PRICE_PRO_MONTHLY, cfg.STRIPE_PRICE_PRO_YEARLY)
    with tenant_session(tenant_id, services.session_factory) as session:
        fresh = session.execute(insert(StripeEvent).values(tenant_id=uuid.UUID(tenant_id), event_id=event["id"],
                                                           event_type=event["type"][:64])
                                .on_conflict_do_nothing().returning(StripeEvent.event_id)).scalar()
        if fresh is None:
            return Outcome(200, "This event was already processed.")
        said = events.apply(session, event, stripe_client(cfg), prices)
    log.info("stripe event processed", extra={"event": "billing.hook_processed"})
    return Outcome(200, said)
