"""Support access pages: the staff console (request, open, leave) and the tenant's approvals page."""

from __future__ import annotations

import uuid

from flask import Blueprint, Flask, abort, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select

from app.audit.log import changes, record
from app.audit.web import audit_outside_request, current_actor, request_origin
from app.auth.directory import staff_grants, tenant_directory
from app.auth.principals import register_principal_loader
from app.auth.roles import permission_page
from app.services import current_services
from app.support.access import (
    SupportError,
    SupportUser,
    active_grant,
    decide,
    end_now,
    load_support_user,
    open_grant,
    request_access,
)
from app.support.models import SupportGrant
from app.tenancy import db_session
from app.tenants.models import TenantSettings

bp = Blueprint("support", __name__)


def _staff_email() -> str:
    """The signed-in staff member's email, or 404 (the console does not exist for anyone else)."""
    email = session.get("staff_email")
    if not email or email not in current_services().config.support_staff:
        abort(404)
    return email


def _parse_uuid(raw: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        abort(400, description="That account or grant id is not valid.")


@bp.get("/support/")
def console():
    email = _staff_email()
    query = (request.args.get("q") or "").strip().lower()
    factory = current_services().session_factory
    tenants = [t for t in tenant_directory(factory) if not query or query in t[1].lower()][:50]
    return render_template("support/console.html", email=email, tenants=tenants, grants=staff_grants(factory, email),
                           query=query, errors={}, form={})


@bp.post("/support/requests")
def request_grant():
    email = _staff_email()
    tenant_id = _parse_uuid(request.form.get("tenant_id"))
    try:
        minutes = int(request.form.get("minutes") or 0)
    except ValueError:
        minutes = 0
    try:
        grant = request_access(current_services(), tenant_id, email, request.form.get("reason") or "", minutes,
                               request_origin())
    except SupportError as exc:
        factory = current_services().session_factory
        return render_template("support/console.html", email=email, tenants=tenant_directory(factory)[:50],
                               grants=staff_grants(factory, email), query="", errors={"request": str(exc)},
                               form=request.form), 422
    flash("Access is open." if grant.status == "active" else "Request sent; the account's owner must approve it.",
          "success")
    return redirect(url_for("support.console"))


@bp.post("/support/grants/<tenant_id>/<grant_id>/open")
def open_access(tenant_id: str, grant_id: str):
    email = _staff_email()
    try:
        user = open_grant(current_services().session_factory, _parse_uuid(grant_id), _parse_uuid(tenant_id), email,
                          request_origin())
    except SupportError as exc:
        abort(403, description=str(exc))
    auth = session.get("auth")
    logout_user()
    session.clear()
    session.rotate()  # type: ignore[attr-defined]
    session["staff_email"], session["auth"] = email, auth
    login_user(user)
    return redirect(url_for("main.dashboard"))


@bp.post("/support/leave")
def leave():
    email = _staff_email()
    if isinstance(current_user._get_current_object(), SupportUser):
        audit_outside_request(current_user.tenant_id, current_user.audit_actor, "support.left",
                              target_type="support_grant", target_id=current_user.grant_id)
    auth = session.get("auth")
    logout_user()
    session.clear()
    session.rotate()  # type: ignore[attr-defined]
    session["staff_email"], session["auth"] = email, auth
    return redirect(url_for("support.console"))


@bp.get("/settings/support-access/")
@permission_page("approve_support_access")
def approvals():
    s = db_session()
    grants = s.execute(select(SupportGrant).order_by(SupportGrant.requested_at.desc()).limit(50)).scalars().all()
    settings = s.get(TenantSettings, uuid.UUID(g.tenant_id))
    return render_template("support/approvals.html", grants=grants, settings=settings)


@bp.post("/settings/support-access/<grant_id>/<decision>")
@permission_page("approve_support_access")
def decide_grant(grant_id: str, decision: str):
    if decision not in ("approve", "deny", "end"):
        abort(404)
    gid = _parse_uuid(grant_id)
    try:
        if decision == "end":
            end_now(db_session(), gid, current_actor(), request_origin())
        else:
            decide(db_session(), current_services().redis, gid, decision == "approve", current_user.id,
                   current_user.email, request_origin())
    except SupportError as exc:
        abort(409, description=str(exc))
    flash({"approve": "Access approved.", "deny": "Request denied.", "end": "Access ended."}[decision], "success")
    return redirect(url_for("support.approvals"))


@bp.post("/settings/support-access/policy")
@permission_page("approve_support_access")
def policy():
    s = db_session()
    settings = s.get(TenantSettings, uuid.UUID(g.tenant_id))
    if settings is None:
        abort(404)
    before = {"support_access_requires_approval": settings.support_access_requires_approval}
    settings.support_access_requires_approval = request.form.get("requires_approval") == "on"
    after = {"support_access_requires_approval": settings.support_access_requires_approval}
    old, new = changes(before, after)
    if new:
        record(s, settings.tenant_id, current_actor(), "settings.support_access",
               target_type="tenant_settings", target_id=settings.tenant_id, before=old, after=new,
               origin=request_origin())
    flash("Saved.", "success")
    return redirect(url_for("support.approvals"))


def banner_grant() -> SupportGrant | None:
    """For the layout: the live grant of the signed-in tenant (one query per page, cached on the request)."""
    if "support_banner" not in g:
        g.support_banner = active_grant(db_session()) if g.get("tenant_id") else None
    return g.support_banner


def _load_support_user(user_key: str) -> SupportUser | None:
    services = current_services()
    return load_support_user(services.session_factory, services.config.support_staff, session.get("staff_email"),
                             user_key)


def init_support(app: Flask) -> None:
    """Load support principals from their sessions, and audit every request a support user makes."""
    register_principal_loader(app, "support", _load_support_user)

    @app.before_request
    def _audit_support_action() -> None:
        if request.endpoint in (None, "static"):
            return
        user = current_user._get_current_object() if current_user else None
        if isinstance(user, SupportUser):
            audit_outside_request(user.tenant_id, user.audit_actor, "support.action", target_type="request",
                                  target_id=f"{request.method} {request.path}"[:200])
