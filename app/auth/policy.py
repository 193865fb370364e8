"""A workspace's sign-in policy: "Require Google or Microsoft sign-in", its settings page, and break-glass.

With the policy on, emailed codes no longer sign anyone into the workspace, so the customer's own IdP policies
(MFA, conditional access) really apply. Its owners keep one way in for when the provider is down: an explicit
break-glass code sign-in, audited in the workspace and announced by mail to the other owners.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app, g, render_template, request
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.audit.web import current_actor, current_user_row_id, request_origin
from app.auth.models import SignInPolicy
from app.auth.oidc import enabled_providers
from app.auth.roles import permission_page
from app.jobs.queue import enqueue
from app.jobs.runtime import job
from app.mail.send import Message, send
from app.services import Services
from app.tenancy import db_session, tenant_session
from app.tenants.service import tenant_name
from app.users.models import User
from app.views.htmx import wants_partial

bp = Blueprint("sign_in_policy", __name__)
CHOICES = {"codes_or_sso": False, "sso_only": True}


def require_sso(session: Session, tenant_id: uuid.UUID) -> bool:
    policy = session.get(SignInPolicy, tenant_id)
    return bool(policy and policy.require_sso)


def set_require_sso(session: Session, tenant_id: uuid.UUID, value: bool, actor: Actor,
                    updated_by: uuid.UUID | None, origin: Origin) -> bool:
    """Turn the policy on or off; audited with before and after. Returns whether anything changed."""
    policy = session.get(SignInPolicy, tenant_id)
    before = bool(policy and policy.require_sso)
    if before == value:
        return False
    if policy is None:
        policy = SignInPolicy(tenant_id=tenant_id)
        session.add(policy)
    policy.require_sso, policy.updated_by = value, updated_by
    record(session, tenant_id, actor, "settings.sign_in_policy", target_type="sign_in_policy", target_id=tenant_id,
           before={"require_sso": before}, after={"require_sso": value}, origin=origin)
    return True


def break_glass_used(session: Session, redis: Redis, tenant_id: uuid.UUID, user_id: uuid.UUID, email: str,
                     origin: Origin) -> None:
    """An owner came in by break-glass code past the SSO requirement: audit it and tell the other owners."""
    record(session, tenant_id, Actor.user(user_id, email), "auth.break_glass", target_type="user",
           target_id=user_id, after={"method": "break_glass", "policy": "require_sso"}, origin=origin)
    enqueue(redis, notify_break_glass_job, tenant_id, user_id, queue="mail")


@job
def notify_break_glass_job(services: Services, tenant_id: str, user_id: str) -> str:
    """Mail every other active owner of the workspace that break-glass sign-in was used."""
    tid, uid = uuid.UUID(tenant_id), uuid.UUID(user_id)
    with tenant_session(tid, services.session_factory) as s:
        who = s.get(User, uid)
        others = s.execute(select(User.email).where(User.role == "owner", User.active, User.id != uid)).scalars().all()
        workspace = tenant_name(s)
    context = {"who": who.email if who else "An owner", "workspace": workspace}
    for email in others:
        send(services, Message(email, f"Break-glass sign-in used for {workspace}",
                     render_template("mail/break_glass_used.txt", **context),
                     render_template("mail/break_glass_used.html", **context)))
    return f"{len(others)} told"


def _page(error: str | None = None, status: int = 200, saved: bool = False):
    context = {"require_sso": require_sso(db_session(), uuid.UUID(g.tenant_id)), "error": error, "saved": saved,
               "providers": enabled_providers(current_app)}
    template = "auth/_policy_form.html" if wants_partial() else "auth/policy.html"
    return render_template(template, **context), status


@bp.get("/settings/sign-in/")
@permission_page("sign_in_policy")
def page():
    return _page()


@bp.post("/settings/sign-in/")
@permission_page("sign_in_policy")
def save():
    choice = request.form.get("methods", "")
    if choice not in CHOICES:
        return _page("Choose how people may sign in.", 422)
    if CHOICES[choice] and not enabled_providers(current_app):
        return _page("Google and Microsoft sign-in are not set up on this server, so nobody could sign in that "
                     "way. Keep email codes on.", 422)
    set_require_sso(db_session(), uuid.UUID(g.tenant_id), CHOICES[choice], current_actor(), current_user_row_id(),
                    request_origin())
    return _page(saved=True)
