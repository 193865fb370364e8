"""Upgrades through Stripe Checkout and billing changes through the Stripe Customer Portal: the workspace's Stripe
customer (created once and stored, under a lock on the billing row so concurrent clicks make one), the two kinds of
session, and their audit rows. The plan itself changes only when Stripe's webhook confirms (``app.billing.events``);
nothing here touches card data, which stays on Stripe's pages."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.billing.models import TenantBilling
from app.config import Config

log = logging.getLogger(__name__)

INTERVALS = ("month", "year")
# Statuses of a subscription that still exists at Stripe: a second Checkout would make a second subscription.
_LIVE_SUBSCRIPTION = frozenset({"active", "trialing", "past_due", "unpaid", "incomplete", "paused"})


class BillingActionError(Exception):
    """An upgrade or portal visit that could not start, with the sentence to show on the billing page."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class Customer:
    """Who the Stripe customer is for (the owner's email, the workspace's name)."""

    email: str
    name: str


def stripe_configured(cfg: Config) -> bool:
    """True when upgrades can be offered: a secret key and both Pro prices."""
    return bool(cfg.STRIPE_SECRET_KEY and cfg.STRIPE_PRICE_PRO_MONTHLY and cfg.STRIPE_PRICE_PRO_YEARLY)


def price_for(cfg: Config, interval: str) -> str:
    """The configured Pro price for ``interval`` (month or year)."""
    if interval not in INTERVALS:
        raise BillingActionError("Choose monthly or yearly billing.", 400)
    return cfg.STRIPE_PRICE_PRO_MONTHLY if interval == "month" else cfg.STRIPE_PRICE_PRO_YEARLY


def _locked_row(session: Session, tenant_id: uuid.UUID) -> TenantBilling:
    row = session.execute(select(TenantBilling).where(TenantBilling.tenant_id == tenant_id).with_for_update()
                          .execution_options(populate_existing=True)).scalar_one_or_none()
    if row is None:
        raise BillingActionError("This workspace has no billing record; contact support.", 409)
    return row


def _stripe_failed(what: str, exc: stripe.StripeError) -> BillingActionError:
    # The error's class and request id identify it at Stripe; its message can quote what we sent, so it stays out.
    log.warning("stripe %s failed: %s (request %s)", what, type(exc).__name__, getattr(exc, "request_id", None))
    return BillingActionError(f"Stripe could not {what} just now. Nothing was charged; try again in a minute.", 502)


def ensure_customer(session: Session, tenant_id: uuid.UUID, client: stripe.StripeClient, who: Customer) -> str:
    """The workspace's Stripe customer id, created at Stripe and stored the first time. The billing row stays locked
    until the caller's transaction ends, so a second click waits for the first and reuses its customer."""
    row = _locked_row(session, tenant_id)
    if row.stripe_customer_id:
        return row.stripe_customer_id
    try:
        customer = client.v1.customers.create(
            params={"email": who.email, "name": who.name, "metadata": {"tenant_id": str(tenant_id)}},
            # Should our commit fail after Stripe made the customer, the retry gets that same customer back.
            options={"idempotency_key": f"bi-customer-{tenant_id}"})
    except stripe.StripeError as exc:
        raise _stripe_failed("set up your billing account", exc) from exc
    row.stripe_customer_id = customer.id
    session.flush()
    return customer.id


def has_live_subscription(session: Session, tenant_id: uuid.UUID) -> bool:
    """A subscription exists at Stripe for the workspace (to change it, the owner goes to the portal)."""
    row = session.get(TenantBilling, tenant_id)
    return bool(row is not None and row.stripe_subscription_id and row.status in _LIVE_SUBSCRIPTION)


def refuse_second_subscription(session: Session, tenant_id: uuid.UUID) -> None:
    """Checkout makes a new subscription: refused while the workspace already has one."""
    if has_live_subscription(session, tenant_id):
        raise BillingActionError("This workspace already has a subscription: use Manage billing to change it.", 409)


def start_checkout(session: Session, tenant_id: uuid.UUID, client: stripe.StripeClient, *, customer_id: str,
                   price: str, interval: str, success_url: str, cancel_url: str, actor: Actor,
                   origin: Origin | None = None) -> str:
    """A Checkout session for Pro on ``price`` (subscription mode); its URL, where the owner goes to pay."""
    try:
        checkout = client.v1.checkout.sessions.create(params={
            "mode": "subscription", "customer": customer_id, "line_items": [{"price": price, "quantity": 1}],
            "success_url": success_url, "cancel_url": cancel_url, "client_reference_id": str(tenant_id),
            "metadata": {"tenant_id": str(tenant_id)},
            "subscription_data": {"metadata": {"tenant_id": str(tenant_id)}}})
    except stripe.StripeError as exc:
        raise _stripe_failed("start the checkout", exc) from exc
    if not checkout.url:
        raise BillingActionError("Stripe did not return a checkout page; try again in a minute.", 502)
    record(session, tenant_id, actor, "billing.checkout_started", target_type="billing", target_id=tenant_id,
           after={"plan": "pro", "interval": interval, "checkout_session": checkout.id}, origin=origin)
    return checkout.url


def open_portal(session: Session, tenant_id: uuid.UUID, client: stripe.StripeClient, *, return_url: str,
                actor: Actor, origin: Origin | None = None) -> str:
    """A Customer Portal session for the workspace's customer (cards, invoices, cancel); its URL."""
    row = session.get(TenantBilling, tenant_id)
    if row is None or not row.stripe_customer_id:
        raise BillingActionError("There is no Stripe billing account yet: upgrade first, then manage it here.", 409)
    try:
        portal = client.v1.billing_portal.sessions.create(params={"customer": row.stripe_customer_id,
                                                                  "return_url": return_url})
    except stripe.StripeError as exc:
        raise _stripe_failed("open the billing portal", exc) from exc
    record(session, tenant_id, actor, "billing.portal_opened", target_type="billing", target_id=tenant_id,
           after={"portal_session": portal.id}, origin=origin)
    return portal.url
