"""The users page (htmx): change roles, deactivate and reactivate, add a user by email."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import Blueprint, abort, g, render_template, request
from flask_login import current_user
from sqlalchemy import select

from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.auth.views import EMAIL
from app.tenancy import db_session
from app.users.models import ROLES, User
from app.users.service import UserChangeError, add_user, change_role, set_active
from app.views.htmx import wants_partial

bp = Blueprint("users", __name__, url_prefix="/settings/users")



def _user_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        abort(404)


def _page(status: int = 200, errors: dict | None = None, form: dict | None = None):  # type: ignore[no-untyped-def]
    users = db_session().execute(select(User).order_by(User.active.desc(), User.name, User.email)).scalars().all()
    return render_template("users/page.html", users=users, roles=ROLES, errors=errors or {}, form=form or {}), status


@bp.get("/")
@permission_page("users_and_roles")
def index():  # type: ignore[no-untyped-def]
    return _page()


def _row(user: User, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    if wants_partial():
        # 200 even for a refused change: htmx swaps only successful answers, and the row carries the message.
        return render_template("users/_row.html", u=user, roles=ROLES, error=error), 200
    if error:
        abort(status, description=error)
    return _page()


def _change(user_id: str, apply: Callable[[uuid.UUID], User]):  # type: ignore[no-untyped-def]
    """Run one change on a user; a refusal comes back inline in the user's row."""
    uid = _user_id(user_id)
    try:
        user = apply(uid)
    except UserChangeError as exc:
        user = db_session().get(User, uid)
        if user is None:
            abort(404)
        return _row(user, str(exc), 422)
    return _row(user)


@bp.post("/<user_id>/role")
@permission_page("users_and_roles")
def role(user_id: str):  # type: ignore[no-untyped-def]
    return _change(user_id, lambda uid: change_role(db_session(), current_actor(), current_user.role, uid,
                                                    request.form.get("role", ""), request_origin()))


@bp.post("/<user_id>/active")
@permission_page("users_and_roles")
def active(user_id: str):  # type: ignore[no-untyped-def]
    return _change(user_id, lambda uid: set_active(db_session(), current_actor(), current_user.role, uid,
                                                   request.form.get("active") == "true", request_origin()))


@bp.post("/")
@permission_page("users_and_roles")
def add():  # type: ignore[no-untyped-def]
    form = {k: (request.form.get(k) or "").strip() for k in ("email", "name", "role")}
    if not EMAIL.match(form["email"].lower()):
        return _page(422, {"email": "Enter an email address, like name@company.com."}, form)
    try:
        add_user(db_session(), current_actor(), current_user.role, uuid.UUID(g.tenant_id), form["email"], form["name"],
                 form["role"] or "viewer", request_origin())
    except UserChangeError as exc:
        return _page(422, {"email": str(exc)}, form)
    return _page()
