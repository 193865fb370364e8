"""Flask-Login wiring: the session names tenant and user; loading the user sets the tenant for RLS first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Flask, g, redirect, request, url_for
from flask_login import LoginManager, current_user

from app.auth.signin import safe_next
from app.observability.logs import tenant_id_var
from app.tenancy import db_session, set_tenant
from app.users.models import User


def _parse(user_key: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    tenant, _, user = user_key.partition(":")
    try:
        return uuid.UUID(tenant), uuid.UUID(user)
    except ValueError:
        return None


def load_user(user_key: str) -> User | None:
    if user_key.startswith("support:"):
        from app.support.access import load_support_user

        return load_support_user(user_key)  # type: ignore[return-value]
    parsed = _parse(user_key)
    if parsed is None:
        return None
    tenant_id, user_id = parsed
    set_tenant(tenant_id)
    user = db_session().get(User, user_id)
    if user is None or not user.active:
        set_tenant(None)
        return None
    tenant_id_var.set(str(tenant_id))
    g.user = user
    return user


def init_login(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = "auth.sign_in"
    manager.login_message = "Sign in to continue."
    manager.login_message_category = "info"
    manager.session_protection = "basic"
    manager.user_loader(load_user)

    @manager.unauthorized_handler
    def _unauthorized():  # type: ignore[no-untyped-def]
        if request.headers.get("HX-Request"):
            # Back to the page the browser shows, not to the partial that noticed the expired session.
            page = urlsplit(request.headers.get("HX-Current-URL", ""))
            back = page.path + (f"?{page.query}" if page.query else "") if page.path else None
            return "", 401, {"HX-Redirect": url_for("auth.sign_in", next=safe_next(back))}
        target = url_for("auth.sign_in", next=request.full_path if request.method == "GET" else None)
        return redirect(target)

    manager.init_app(app)

    def can_template(permission: str) -> bool:
        from app.auth.roles import can

        return bool(current_user.is_authenticated and can(current_user.role, permission))

    def current_tenant_name() -> str:
        if "tenant_name" not in g:
            from app.tenants.service import tenant_name

            g.tenant_name = tenant_name(db_session()) if g.get("tenant_id") else ""
        return g.tenant_name or ""

    def isotime(timestamp: float) -> str:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")

    app.jinja_env.globals.update(can=can_template, current_tenant_name=current_tenant_name)
    app.jinja_env.filters["isotime"] = isotime
