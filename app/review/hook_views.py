"""The ConnectWise callback endpoint: ``POST /hooks/connectwise/<token>`` (pre-tenant, no sign-in, no CSRF token).

Exempt from CSRF only because the signature is the proof (``app.review.hooks.receive`` verifies it); rate-limited
per token (so per tenant) and per IP. Answers are small JSON; a refusal is a 4xx that changed nothing.
"""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from app.review.hooks import receive
from app.security.csrf import csrf_exempt
from app.security.limits import CALLBACK_PER_TOKEN, WEBHOOK_PER_IP, client_ip, limiter, view_arg_key
from app.services import current_services

bp = Blueprint("review_hooks", __name__, url_prefix="/hooks/connectwise")


@bp.record_once
def _exempt_from_csrf(state: BlueprintSetupState) -> None:
    if isinstance(state.app, Flask):  # always, in this app; anything else keeps the CSRF check (fails closed)
        csrf_exempt(state.app, "review_hooks.receive_callback")


@bp.post("/<token>")
@limiter.limit(WEBHOOK_PER_IP, key_func=client_ip, scope="webhook-ip")
@limiter.limit(CALLBACK_PER_TOKEN, key_func=view_arg_key("token"), scope="review-callback-token")
def receive_callback(token: str) -> ResponseReturnValue:
    outcome = receive(current_services(), token, request.get_data(cache=False),
                      request.headers.get("x-content-signature"))
    return jsonify({"message": outcome.message}), outcome.status
