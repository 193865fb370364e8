"""Stripe's webhook (``POST /webhooks/stripe``): signed events resolved to their tenant through
``bi_billing_customer_tenant``, each event id processed once (``app.billing.webhook.receive``).

Pre-tenant, no sign-in, no CSRF token: exempt from CSRF only because Stripe's signature over the raw body is the
proof. Rate-limited per IP like the other webhooks."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from app.billing.webhook import receive
from app.security.csrf import csrf_exempt
from app.security.limits import WEBHOOK_PER_IP, client_ip, limiter
from app.services import current_services

bp = Blueprint("billing_hooks", __name__)


@bp.record_once
def _exempt_from_csrf(state: BlueprintSetupState) -> None:
    if isinstance(state.app, Flask):  # always, in this app; anything else keeps the CSRF check (fails closed)
        csrf_exempt(state.app, "billing_hooks.stripe")


@bp.post("/webhooks/stripe")
@limiter.limit(WEBHOOK_PER_IP, key_func=client_ip, scope="webhook-ip")
def stripe() -> ResponseReturnValue:
    outcome = receive(current_services(), request.get_data(cache=False), request.headers.get("Stripe-Signature"))
    return jsonify({"message": outcome.message}), outcome.status
