"""Applying Stripe's events to the workspace's billing row, each change an audit row with before and after (actor
``Actor.system("stripe")``).

Out of order: subscription events never trust their own copy of the subscription. The subscription is fetched
from Stripe under the billing row's lock and its current state applied, so a late ``updated`` cannot undo a
``deleted`` (Stripe says "canceled" when asked) and two racing deliveries apply the newest state last. Only when
Stripe no longer knows the subscription does the event's copy count, and then only if it is newer than
``state_as_of``. Invoice events compare their ``created`` with the failure on record: a late "paid" for an older
invoice never clears a newer failure, and a failure whose invoice has since been paid is ignored.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import Actor, record
from app.billing.models import TenantBilling
from app.billing.plans import FREE, GRACE_DAYS, PRO

log = logging.getLogger(__name__)
STRIPE = Actor.system("stripe")
SUBSCRIPTION_EVENTS = frozenset({"customer.subscription.created", "customer.subscription.updated",
                                 "customer.subscription.deleted"})
# invoice.payment_succeeded is what localstripe (and older Stripe accounts) send alongside invoice.paid.
PAID_EVENTS = frozenset({"invoice.paid", "invoice.payment_succeeded"})
HANDLED = SUBSCRIPTION_EVENTS | PAID_EVENTS | {"checkout.session.completed", "invoice.payment_failed"}
LIVE = frozenset({"trialing", "active", "past_due", "unpaid", "paused"})  # a subscription that is still ours
ENDED = frozenset({"canceled", "incomplete_expired"})
_SUBSCRIPTION_FIELDS = ("stripe_subscription_id", "status", "current_period_end", "cancel_at_period_end",
                        "trial_ends_at")


@dataclass(frozen=True)
class Prices:
    """The configured price ids (``STRIPE_PRICE_PRO_MONTHLY`` / ``_YEARLY``): which plan a subscription is on."""

    monthly: str
    yearly: str

    def plan_of(self, price_id: str | None) -> tuple[str, str] | None:
        """(plan, interval) for a price id; None for a price that is not ours."""
        if price_id and price_id == self.monthly:
            return PRO.key, "month"
        if price_id and price_id == self.yearly:
            return PRO.key, "year"
        return None


def customer_of(event: dict[str, Any]) -> str | None:
    """The Stripe customer id an event is about (a plain id, or an expanded customer's id)."""
    obj = _object(event)
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer if isinstance(customer, str) and customer else None


def apply(session: Session, event: dict[str, Any], client: stripe.StripeClient, prices: Prices, *,
          now: dt.datetime | None = None) -> str:
    """Apply one verified event to the tenant's billing row (``session`` is bound to the tenant). Returns what
    happened, in words for the response. Stripe errors other than "no such subscription" propagate (Stripe
    retries)."""
    now = now or dt.datetime.now(dt.UTC)
    row = session.execute(select(TenantBilling).with_for_update()).scalar_one_or_none()
    if row is None:
        return "No billing record for this workspace."
    kind = event.get("type")
    if kind == "checkout.session.completed" or kind in SUBSCRIPTION_EVENTS:
        return _subscription_event(session, row, event, client, prices, now)
    if kind == "invoice.payment_failed":
        return _payment_failed(session, row, event, client)
    if kind in PAID_EVENTS:
        return _payment_succeeded(session, row, event)
    return "Not an event we use."


def _object(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def _created(event: dict[str, Any], fallback: dt.datetime) -> dt.datetime:
    created = event.get("created")
    if isinstance(created, int) and not isinstance(created, bool):
        try:
            return dt.datetime.fromtimestamp(created, dt.UTC)
        except (ValueError, OverflowError, OSError):
            pass
    return fallback


def _stamp(seconds: Any) -> dt.datetime | None:
    if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
        try:
            return dt.datetime.fromtimestamp(seconds, dt.UTC)
        except (ValueError, OverflowError, OSError):
            return None
    return None


def _subscription_id(event: dict[str, Any]) -> str | None:
    obj = _object(event)
    found = obj.get("subscription") if event.get("type") == "checkout.session.completed" else obj.get("id")
    if isinstance(found, dict):
        found = found.get("id")
    return found if isinstance(found, str) and found else None


def _fetch_subscription(client: stripe.StripeClient, subscription_id: str) -> dict[str, Any] | None:
    """The subscription as Stripe has it now; None when Stripe does not know it."""
    try:
        return client.v1.subscriptions.retrieve(subscription_id).to_dict()
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            return None
        raise


def _price_of(sub: dict[str, Any]) -> str | None:
    """The subscription's price id (Prices API), or its legacy plan id: the first item's."""
    items = sub.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    item = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
    for holder in (item.get("price"), item.get("plan"), sub.get("plan")):
        if isinstance(holder, dict) and isinstance(holder.get("id"), str):
            return str(holder["id"])
    return None


def _period_end(sub: dict[str, Any]) -> dt.datetime | None:
    """When the current period ends: on the subscription (older API versions) or on its first item (newer)."""
    found = _stamp(sub.get("current_period_end"))
    if found is None:
        items = sub.get("items")
        data = items.get("data") if isinstance(items, dict) else None
        if isinstance(data, list) and data and isinstance(data[0], dict):
            found = _stamp(data[0].get("current_period_end"))
    return found


def _subscription_event(session: Session, row: TenantBilling, event: dict[str, Any], client: stripe.StripeClient,
                        prices: Prices, now: dt.datetime) -> str:
    subscription_id = _subscription_id(event)
    if subscription_id is None:
        return "No subscription in this event."
    sub = _fetch_subscription(client, subscription_id)
    as_of = now
    if sub is None:
        as_of = _created(event, now)
        own = _object(event) if event.get("type") in SUBSCRIPTION_EVENTS else {}
        if not own.get("status") or (row.state_as_of is not None and as_of <= row.state_as_of):
            return "Stripe no longer knows this subscription and the event is not newer than what we have."
        sub = own
    status = sub.get("status")
    if not isinstance(status, str) or not status:
        return "The subscription has no status."
    if (row.stripe_subscription_id not in (None, subscription_id) and row.status in LIVE
            and status not in LIVE):
        return "An earlier subscription's event; the current subscription stays."
    _apply_subscription(session, row, subscription_id, sub, status, prices, as_of)
    return "Applied."


def _apply_subscription(session: Session, row: TenantBilling, subscription_id: str, sub: dict[str, Any],
                        status: str, prices: Prices, as_of: dt.datetime) -> None:
    wanted: dict[str, Any] = {"stripe_subscription_id": subscription_id, "status": status,
                              "current_period_end": _period_end(sub),
                              "cancel_at_period_end": bool(sub.get("cancel_at_period_end"))}
    if status == "trialing" and _stamp(sub.get("trial_end")):
        wanted["trial_ends_at"] = _stamp(sub.get("trial_end"))
    plan_now: tuple[str, str | None] | None
    if status in ENDED:
        plan_now = (FREE.key, None)
    else:
        plan_now = prices.plan_of(_price_of(sub))
        if plan_now is None:
            log.warning("stripe subscription on a price that is not configured; plan unchanged",
                        extra={"event": "billing.unknown_price"})
    before_sub = {k: getattr(row, k) for k in _SUBSCRIPTION_FIELDS if k in wanted}
    before_plan = {"plan": row.plan, "billing_interval": row.billing_interval}
    for key, value in wanted.items():
        setattr(row, key, value)
    if plan_now is not None:
        row.plan, row.billing_interval = plan_now
    row.state_as_of = max(as_of, row.state_as_of) if row.state_as_of else as_of
    _audit_change(session, row, "billing.subscription_changed", before_sub,
                  {k: getattr(row, k) for k in before_sub})
    _audit_change(session, row, "billing.plan_changed", before_plan,
                  {"plan": row.plan, "billing_interval": row.billing_interval})


def _payment_failed(session: Session, row: TenantBilling, event: dict[str, Any],
                    client: stripe.StripeClient) -> str:
    failed_at = _created(event, dt.datetime.now(dt.UTC))
    invoice_id = _object(event).get("id")
    if isinstance(invoice_id, str) and invoice_id:
        try:
            invoice = client.v1.invoices.retrieve(invoice_id).to_dict()
        except stripe.InvalidRequestError as error:
            if error.http_status != 404:
                raise
            invoice = {}
        if invoice.get("status") in ("paid", "void"):
            return "That invoice has been paid (or voided) since."
    if row.payment_failed_at is not None:
        return "A failed payment is already on record; its grace period stands."
    before = {"payment_failed_at": None, "grace_ends_at": None}
    row.payment_failed_at = failed_at
    row.grace_ends_at = failed_at + dt.timedelta(days=GRACE_DAYS)
    _audit_change(session, row, "billing.payment_failed", before,
                  {"payment_failed_at": row.payment_failed_at, "grace_ends_at": row.grace_ends_at})
    return "Payment failure recorded."


def _payment_succeeded(session: Session, row: TenantBilling, event: dict[str, Any]) -> str:
    if row.payment_failed_at is None:
        return "Nothing to clear."
    paid_at = _created(event, dt.datetime.now(dt.UTC))
    if paid_at < row.payment_failed_at:
        return "An older payment; the newer failure stands."
    before = {"payment_failed_at": row.payment_failed_at, "grace_ends_at": row.grace_ends_at}
    row.payment_failed_at, row.grace_ends_at = None, None
    _audit_change(session, row, "billing.payment_succeeded", before,
                  {"payment_failed_at": None, "grace_ends_at": None})
    return "Payment failure cleared."


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _audit_change(session: Session, row: TenantBilling, action: str, before: dict[str, Any],
                  after: dict[str, Any]) -> None:
    """One audit row with the keys that changed (none changed: no row)."""
    changed = [k for k in after if before.get(k) != after.get(k)]
    if not changed:
        return
    record(session, row.tenant_id, STRIPE, action, target_type="billing", target_id=row.tenant_id,
           before={k: _plain(before.get(k)) for k in changed}, after={k: _plain(after[k]) for k in changed})
