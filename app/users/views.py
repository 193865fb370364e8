"""The users page (htmx): change roles, deactivate and reactivate, add a user by email, decide ConnectWise's
proposed email changes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import Blueprint, abort, g, render_template, request
from flask_login import current_user
from sqlalchemy import select

from app.audit.web import current_actor, current_user_row_id, request_origin
from app.auth.roles import permission_page
from app.services import current_services
from app.tenancy import db_session
from app.users import email_changes
from app.users.emails import is_valid_email, normalise_email
from app.users.models import ROLES, User
from app.users.service import UserChangeError, add_user, change_role, set_active
from app.views.htmx import wants_partial

bp = Blueprint("users", __name__, url_prefix="/settings/users")


def _user_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        abort(404)


def _page(status: int = 200, errors: dict | None = None, form: dict | None = None,
          proposal_errors: dict | None = None):
    users = db_session().execute(select(User).order_by(User.active.desc(), User.name, User.email)).scalars().all()
    return render_template("users/page.html", users=users, roles=ROLES, errors=errors or {}, form=form or {},
                           **_proposals_context(proposal_errors or {})), status


@bp.get("/")
@permission_page("users_and_roles")
def index():
    return _page()


def _row(user: User, error: str | None = None, status: int = 200):
    if wants_partial():
        # 200 even for a refused change: htmx swaps only successful answers, and the row carries the message.
        return render_template("users/_row.html", u=user, roles=ROLES, error=error), 200
    if error:
        abort(status, description=error)
    return _page()


def _change(user_id: str, apply: Callable[[uuid.UUID], User]):
    """Run one change on a user; a refusal comes back inline in the user's row."""
    uid = _user_id(user_id)
    try:
        user = apply(uid)
    except UserChangeError as exc:
        unchanged = db_session().get(User, uid)
        if unchanged is None:
            abort(404)
        return _row(unchanged, str(exc), 422)
    return _row(user)


@bp.post("/<user_id>/role")
@permission_page("users_and_roles")
def role(user_id: str):
    return _change(user_id, lambda uid: change_role(db_session(), current_actor(), current_user.role, uid,
                                                    request.form.get("role", ""), request_origin()))


@bp.post("/<user_id>/active")
@permission_page("users_and_roles")
def active(user_id: str):
    return _change(user_id, lambda uid: set_active(db_session(), current_services().redis, current_actor(),
                                                   current_user.role, uid, request.form.get("active") == "true",
                                                   request_origin()))


@bp.post("/")
@permission_page("users_and_roles")
def add():
    form = {k: (request.form.get(k) or "").strip() for k in ("email", "name", "role")}
    if not is_valid_email(normalise_email(form["email"])):
        return _page(422, {"email": "Enter an email address, like name@company.com."}, form)
    try:
        add_user(db_session(), current_actor(), current_user.role, uuid.UUID(g.tenant_id), form["email"], form["name"],
                 form["role"] or "viewer", request_origin())
    except UserChangeError as exc:
        return _page(422, {"email": str(exc)}, form)
    return _page()


def _decide(proposal_id: str, apply: Callable[[uuid.UUID], User | None]):
    """Accept or reject one proposal; a refusal comes back beside the proposal, 422 for a full page."""
    pid = _user_id(proposal_id)
    error, changed = None, None
    try:
        changed = apply(pid)
    except email_changes.ProposalNotFound:
        abort(404)
    except UserChangeError as exc:
        error = str(exc)
    if not wants_partial():
        return _page(422, proposal_errors={str(pid): error}) if error else _page()
    # 200 even for a refusal, as for a user's row: htmx swaps only successful answers.
    return render_template("users/_email_changes.html", **_proposals_context({str(pid): error} if error else {}),
                           changed=changed, roles=ROLES), 200


def _proposals_context(errors: dict[str, str]) -> dict:
    """Open proposals, each refusal beside its proposal, and a refusal for one no longer listed as a notice."""
    proposals = email_changes.open_proposals(db_session())
    listed = {str(p.id) for p, _u in proposals}
    notice = next((m for pid, m in errors.items() if pid not in listed), None)
    return {"proposals": proposals, "proposal_errors": errors, "notice": notice}


@bp.post("/email-changes/<proposal_id>/accept")
@permission_page("users_and_roles")
def accept_email(proposal_id: str):
    return _decide(proposal_id, lambda pid: email_changes.accept(
        db_session(), current_actor(), pid, current_services().redis, request_origin()))


@bp.post("/email-changes/<proposal_id>/reject")
@permission_page("users_and_roles")
def reject_email(proposal_id: str):
    def apply(pid: uuid.UUID) -> None:
        email_changes.reject(db_session(), current_actor(), pid, current_user_row_id(), request_origin())

    return _decide(proposal_id, apply)
