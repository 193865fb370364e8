"""The billing page (``/settings/billing/``, permission ``billing``): plan, status, trial or renewal date, usage
against the limits, upgrade (Stripe Checkout) and manage (Stripe Customer Portal).

Upgrade and Manage are plain form posts answered with a 303 to Stripe's page (a redirect off our origin, which an
htmx request could not follow). A refusal or a Stripe failure re-renders the page with its sentence."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.billing import checkout
from app.billing.gateway import stripe_client
from app.billing.limits import review_limit, seat_limit
from app.billing.models import TenantBilling
from app.billing.state import billing_state
from app.config import Config
from app.review.models import Sweep
from app.security.headers import CSP
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.tenants.service import tenant_name
from app.users.service import seats_used

bp = Blueprint("billing", __name__)

# Stripe's hosted pages: Checkout and the Customer Portal.
STRIPE_PAGES = ("https://checkout.stripe.com", "https://billing.stripe.com")


def _stripe_pages(cfg: Config) -> tuple[str, ...]:
    """Where Upgrade and Manage billing send the owner. Where STRIPE_API_BASE is not Stripe's own (tests), its origin
    serves the hosted pages too."""
    api = urlsplit(cfg.STRIPE_API_BASE)
    if cfg.is_production or api.netloc in ("", "api.stripe.com"):
        return STRIPE_PAGES
    return (*STRIPE_PAGES, f"{api.scheme}://{api.netloc}")


@bp.after_request
def _form_action_to_stripe(response: Response) -> Response:
    # The page's forms answer with a 303 to Stripe, and browsers hold every redirect of a form post to form-action.
    pages = " ".join(_stripe_pages(current_services().config))
    response.headers["Content-Security-Policy"] = CSP.replace("form-action 'self'", f"form-action 'self' {pages}")
    return response


def _context(error: str | None = None) -> dict[str, Any]:
    session, cfg = db_session(), current_services().config
    state = billing_state(session)
    last_sweep = session.execute(select(Sweep.invoices_seen, Sweep.finished_at).where(
        Sweep.finished_at.is_not(None), Sweep.outcome == "ok").order_by(Sweep.finished_at.desc()).limit(1)).first()
    tenant_id = uuid.UUID(required_tenant_id())
    row = session.get(TenantBilling, tenant_id)
    return {"state": state, "seats_used": seats_used(session), "seat_limit": seat_limit(state),
            "review_limit": review_limit(state), "last_sweep": last_sweep,
            "configured": checkout.stripe_configured(cfg), "interval": row.billing_interval if row else None,
            "subscribed": checkout.has_live_subscription(session, tenant_id),
            "checkout": request.args.get("checkout", ""), "error": error}


def _back_url(cfg: Config, outcome: str | None = None) -> str:
    # In production Stripe sends the owner back to BASE_URL; elsewhere to the host the browser used.
    if cfg.is_production:
        return cfg.BASE_URL.rstrip("/") + url_for("billing.page", checkout=outcome)
    return url_for("billing.page", checkout=outcome, _external=True)


def _refused(exc: checkout.BillingActionError) -> ResponseReturnValue:
    return render_template("billing/page.html", **_context(exc.message)), exc.status


@bp.get("/settings/billing/")
@permission_page("billing")
def page() -> str:
    return render_template("billing/page.html", **_context())


@bp.post("/settings/billing/checkout")
@permission_page("billing")
def upgrade() -> ResponseReturnValue:
    """Send the owner to Stripe Checkout for Pro, monthly or yearly."""
    session, cfg = db_session(), current_services().config
    tenant_id = uuid.UUID(required_tenant_id())
    try:
        if not checkout.stripe_configured(cfg):
            raise checkout.BillingActionError("Stripe is not set up on this server, so upgrades are off.", 503)
        interval = request.form.get("interval", "")
        price = checkout.price_for(cfg, interval)
        checkout.refuse_second_subscription(session, tenant_id)
        client = stripe_client(cfg)
        customer_id = checkout.ensure_customer(session, tenant_id, client, checkout.Customer(
            email=current_user.email, name=tenant_name(session) or ""))
        session.commit()  # the customer is kept even if the checkout below fails: the next click reuses it
        url = checkout.start_checkout(session, tenant_id, client, customer_id=customer_id, price=price,
                                      interval=interval, success_url=_back_url(cfg, "success"),
                                      cancel_url=_back_url(cfg, "canceled"), actor=current_actor(),
                                      origin=request_origin())
    except checkout.BillingActionError as exc:
        return _refused(exc)
    return redirect(url, 303)


@bp.post("/settings/billing/portal")
@permission_page("billing")
def portal() -> ResponseReturnValue:
    """Send the owner to the Stripe Customer Portal (cards, invoices, cancelling)."""
    session, cfg = db_session(), current_services().config
    try:
        if not cfg.STRIPE_SECRET_KEY:
            raise checkout.BillingActionError("Stripe is not set up on this server, so billing cannot be managed "
                                              "here.", 503)
        url = checkout.open_portal(session, uuid.UUID(required_tenant_id()), stripe_client(cfg),
                                   return_url=_back_url(cfg), actor=current_actor(), origin=request_origin())
    except checkout.BillingActionError as exc:
        return _refused(exc)
    return redirect(url, 303)
