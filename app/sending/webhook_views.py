"""Mailgun's delivery webhook (``POST /webhooks/mailgun``): signed events (delivered, failed, bounced, complained)
resolved to their tenant through ``bi_invoice_send_tenant``, each event id processed once.

Pre-tenant, no sign-in, no CSRF token: exempt from CSRF only because Mailgun's signature in the body is the proof
(``app.sending.webhook.receive`` verifies it). Rate-limited per IP like the other webhooks."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from app.security.csrf import csrf_exempt
from app.security.limits import WEBHOOK_PER_IP, client_ip, limiter
from app.sending.webhook import receive
from app.services import current_services

bp = Blueprint("sending_hooks", __name__)


@bp.record_once
def _exempt_from_csrf(state: BlueprintSetupState) -> None:
    if isinstance(state.app, Flask):  # always, in this app; anything else keeps the CSRF check (fails closed)
        csrf_exempt(state.app, "sending_hooks.mailgun")


@bp.post("/webhooks/mailgun")
@limiter.limit(WEBHOOK_PER_IP, key_func=client_ip, scope="webhook-ip")
def mailgun() -> ResponseReturnValue:
    outcome = receive(current_services(), request.get_data(cache=False))
    return jsonify({"message": outcome.message}), outcome.status
