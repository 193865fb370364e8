"""Development only: a signed, short-lived sign-in link printed by `make dev` (never registered otherwise)."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_user
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.auth.sessions import load_user
from app.mail.send import outbox as sent
from app.services import current_services

bp = Blueprint("dev", __name__, url_prefix="/dev")
_SALT = "dev-sign-in"
MAX_AGE_SECONDS = 12 * 3600


def sign_in_token(secret_key: str, tenant_id: uuid.UUID | str, user_id: uuid.UUID | str) -> str:
    return URLSafeTimedSerializer(secret_key, salt=_SALT).dumps(f"{tenant_id}:{user_id}")


@bp.get("/sign-in")
def sign_in_link():
    if not current_services().config.is_development:
        abort(404)
    serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)
    try:
        key = serializer.loads(request.args.get("token", ""), max_age=MAX_AGE_SECONDS)
    except SignatureExpired:
        abort(410, description="This sign-in link has expired. Run `make dev` again for a new one.")
    except BadSignature:
        abort(400, description="This sign-in link is not valid.")
    user = load_user(key)
    if user is None:
        abort(403, description="That user is inactive or no longer exists.")
    login_user(user)
    flash(f"Signed in as {user.email} (development link).", "success")
    return redirect(url_for("main.dashboard"))


@bp.get("/outbox")
def outbox():
    """Mail the development outbox has "sent" (sign-in codes included), newest first."""
    services = current_services()
    if not services.config.is_development:
        abort(404)
    return render_template("dev/outbox.html", messages=sent(services.redis))
