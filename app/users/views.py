"""The users page (htmx): change roles (asking first before someone reduces their own), deactivate and reactivate,
add a user by email, the role new ConnectWise members get, what each role may do, ConnectWise's proposed email
changes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.audit.web import current_actor, current_user_row_id, request_origin
from app.auth.roles import ROLE_LABELS, can, lost_permissions, permission_page, role_sentence
from app.billing.limits import seat_limit
from app.billing.notices import plan_notice
from app.billing.state import billing_state
from app.connectwise.members import DEFAULT_ROLES, DefaultRoleError, new_member_role, set_new_member_role
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.users import email_changes
from app.users.emails import is_valid_email, normalise_email
from app.users.models import ROLES, User
from app.users.service import UserChangeError, add_user, change_role, check_role_change, seats_used, set_active
from app.views.htmx import wants_partial

bp = Blueprint("users", __name__, url_prefix="/settings/users")


def _user_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        abort(404)


def _page(status: int = 200, errors: dict | None = None, form: dict | None = None,
          proposal_errors: dict | None = None, confirm: dict | None = None):
    users = db_session().execute(select(User).order_by(User.active.desc(), User.name, User.email)).scalars().all()
    state = billing_state(db_session())
    seats = {"used": seats_used(db_session()), "limit": seat_limit(state), "plan": state.plan.name,
             "can_upgrade": can(current_user.role, "billing")}
    plan_banner = plan_notice(state)
    return render_template("users/page.html", users=users, roles=ROLES, errors=errors or {}, form=form or {},
                           seats=seats, plan_notice=plan_banner,
                           confirm=confirm, role_sentences=[(r, role_sentence(r)) for r in ROLES],
                           default_roles=DEFAULT_ROLES, new_member_role=new_member_role(db_session()),
                           can_set_default=current_user.role == "owner",
                           **_proposals_context(proposal_errors or {})), status


@bp.app_template_filter("role_label")
def role_label(role: str) -> str:
    """A role as people read it ("Billing manager", "No access")."""
    return ROLE_LABELS.get(role, role.replace("_", " ").capitalize())


@bp.get("/")
@permission_page("users_and_roles")
def index():
    return _page()


def _row(user: User, error: str | None = None, status: int = 200, saved: str | None = None):
    if wants_partial():
        # 200 even for a refused change: htmx swaps only successful answers, and the row carries the message.
        html = render_template("users/_row.html", u=user, roles=ROLES, error=error)
        if saved:
            html += render_template("users/_toast_oob.html", category="success", message=saved)
        return html, 200
    if error:
        abort(status, description=error)
    if saved:
        flash(saved, "success")
    return redirect(url_for("users.index"))


@bp.get("/<user_id>/row")
@permission_page("users_and_roles")
def row(user_id: str):
    """One user's row as it is (a confirmation's Cancel)."""
    user = db_session().get(User, _user_id(user_id))
    if user is None:
        abort(404)
    return render_template("users/_row.html", u=user, roles=ROLES, error=None)


def _change(user_id: str, apply: Callable[[uuid.UUID], User], saved: Callable[[User], str] | None = None):
    """Run one change on a user; a refusal comes back inline in the user's row, a success says so (a toast)."""
    uid = _user_id(user_id)
    try:
        user = apply(uid)
    except UserChangeError as exc:
        unchanged = db_session().get(User, uid)
        if unchanged is None:
            abort(404)
        return _row(unchanged, str(exc), 422)
    return _row(user, saved=saved(user) if saved else None)


def _seat_limit() -> int | None:
    """The plan's seat limit now (the users service sits below billing, so it is handed over)."""
    return seat_limit(billing_state(db_session()))


def _is_self(user: User) -> bool:
    return str(user.id) == str(getattr(current_user, "id", ""))


@bp.post("/<user_id>/role")
@permission_page("users_and_roles")
def role(user_id: str):
    new_role = request.form.get("role", "")
    target = db_session().get(User, _user_id(user_id))
    if target is None:
        abort(404)
    lost = lost_permissions(target.role, new_role) if new_role in ROLES else []
    if _is_self(target) and lost and request.form.get("confirm") != "yes":
        try:  # a change that would be refused anyway is refused now, not asked about
            check_role_change(db_session(), current_user.role, target, new_role)
        except UserChangeError as exc:
            return _row(target, str(exc), 422)
        # Reducing one's own access is asked about first, on the server: no script dialog.
        confirm = {"user_id": str(target.id), "role": new_role, "lost": lost}
        if wants_partial():
            return render_template("users/_row.html", u=target, roles=ROLES, error=None, confirm=confirm), 200
        return _page(confirm=confirm)
    actor_role, limit = current_user.role, _seat_limit()
    response = _change(user_id, lambda uid: change_role(db_session(), current_actor(), actor_role, uid, new_role,
                                                        request_origin(), current_services().redis,
                                                        seat_limit=limit),
                       saved=lambda u: f"Saved: {u.email} is now {role_label(u.role)}.")
    if _is_self(target) and target.role == new_role and not can(new_role, "users_and_roles"):
        # Their own change took this page away from them: land where they still may be.
        flash(f"Saved: you are now {role_label(new_role)}.", "success")
        if wants_partial():
            return "", 200, {"HX-Redirect": url_for("main.dashboard")}
        return redirect(url_for("main.dashboard"))
    return response


@bp.post("/new-members")
@permission_page("users_and_roles")
def new_members():
    """The role a member sync gives new ConnectWise members: the owner's setting."""
    if current_user.role != "owner":
        abort(403, description="Only an owner can choose the role new members get.")
    try:
        changed = set_new_member_role(db_session(), required_tenant_id(), request.form.get("new_member_role"),
                                      actor=current_actor(), origin=request_origin())
    except DefaultRoleError as exc:
        return _page(422, errors={"new_member_role": str(exc)})
    role_now = new_member_role(db_session())
    flash(("Saved: new members from ConnectWise start as " + role_label(role_now) + "." if role_now != "no_access"
           else "Saved: new members from ConnectWise arrive with no access until you give them a role.")
          if changed else "Nothing changed.", "success")
    return redirect(url_for("users.index"))


@bp.post("/<user_id>/active")
@permission_page("users_and_roles")
def active(user_id: str):
    limit = _seat_limit()
    return _change(user_id, lambda uid: set_active(db_session(), current_services().redis, current_actor(),
                                                   current_user.role, uid, request.form.get("active") == "true",
                                                   request_origin(), seat_limit=limit))


@bp.post("/")
@permission_page("users_and_roles")
def add():
    form = {k: (request.form.get(k) or "").strip() for k in ("email", "name", "role")}
    if not is_valid_email(normalise_email(form["email"])):
        return _page(422, {"email": "Enter an email address, like name@company.com."}, form)
    try:
        added = add_user(db_session(), current_actor(), current_user.role, uuid.UUID(g.tenant_id), form["email"],
                         form["name"], form["role"] or "viewer", request_origin(), seat_limit=_seat_limit())
    except UserChangeError as exc:
        return _page(422, {"email": str(exc)}, form)
    flash(f"Added {added.email} as {role_label(added.role)}.", "success")
    return redirect(url_for("users.index"))


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
