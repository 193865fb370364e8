"""Flask-Login wiring: the session's key loads a principal (``app.auth.principals``), and the request's tenant
becomes that principal's in one place, ``enter_principal_tenant``, before any view runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from flask import Flask, g, redirect, request, url_for
from flask_login import LoginManager, current_user
from sqlalchemy.orm import Session

from app.auth.principals import install_principal_loaders, load_principal
from app.auth.signin import safe_next
from app.db import session_tenant, set_session_tenant
from app.observability.logs import tenant_id_var
from app.tenancy import db_session, set_tenant
from app.tenants.service import tenant_name
from app.users.models import User


def _parse(user_key: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    tenant, _, user = user_key.partition(":")
    try:
        return uuid.UUID(tenant), uuid.UUID(user)
    except ValueError:
        return None


@contextmanager
def _reading_as(session: Session, tenant_id: uuid.UUID) -> Iterator[None]:
    """Bind ``session`` to ``tenant_id`` for one lookup, then back to what it was (RLS hides users otherwise)."""
    before = session_tenant(session)
    set_session_tenant(session, tenant_id)
    try:
        yield
    finally:
        set_session_tenant(session, before)


def load_user(user_key: str) -> User | None:
    """The active workspace user ``<tenant id>:<user id>`` names; reads in the request's session, sets no tenant."""
    parsed = _parse(user_key)
    if parsed is None:
        return None
    tenant_id, user_id = parsed
    session = db_session()
    with _reading_as(session, tenant_id):
        user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    return user


def enter_principal_tenant() -> None:
    """The request runs for the signed-in principal's tenant: loaded here (Flask-Login loads lazily), then set."""
    if request.endpoint == "static":
        return
    principal = current_user._get_current_object()
    tenant_id = getattr(principal, "tenant_id", None) if principal.is_authenticated else None
    if tenant_id is not None:
        set_tenant(tenant_id)
        tenant_id_var.set(str(tenant_id))


def current_tenant_name() -> str:
    """For the layout: the request's tenant's name (one query per page, cached on the request)."""
    if "tenant_name" not in g:
        g.tenant_name = tenant_name(db_session()) if g.get("tenant_id") else ""
    return g.tenant_name or ""


def init_login(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = "auth.sign_in"
    manager.login_message = "Sign in to continue."
    manager.login_message_category = "info"
    manager.session_protection = "basic"
    install_principal_loaders(app, load_user)
    manager.user_loader(load_principal)

    @manager.unauthorized_handler
    def _unauthorized():
        if request.headers.get("HX-Request"):
            # Back to the page the browser shows, not to the partial that noticed the expired session.
            page = urlsplit(request.headers.get("HX-Current-URL", ""))
            back = page.path + (f"?{page.query}" if page.query else "") if page.path else None
            return "", 401, {"HX-Redirect": url_for("auth.sign_in", next=safe_next(back))}
        target = url_for("auth.sign_in", next=request.full_path if request.method == "GET" else None)
        return redirect(target)

    manager.init_app(app)
    app.before_request(enter_principal_tenant)
