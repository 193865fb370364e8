"""Finishing a sign-in, whatever proved the email: a new session id, the tenant chosen, audited, then `next`.

An email that belongs to several tenants (or to support staff) picks where to go after proving itself; the proof is
kept in the server-side session for a few minutes so the choice needs no second proof.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import flash, redirect, session, url_for
from flask_login import login_user, logout_user
from werkzeug.wrappers import Response  # what flask.redirect returns

from app.audit.log import Actor, record
from app.audit.web import request_origin
from app.auth.directory import NO_ACCESS, Membership, memberships
from app.auth.policy import break_glass_used
from app.services import Services, current_services
from app.tenancy import db_session, set_tenant
from app.users.emails import normalise_email
from app.users.models import User

PENDING_SECONDS = 600


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path on this site, else None (never another origin, scheme or protocol-relative URL)."""
    if not value or len(value) > 2000 or any(ord(ch) < 32 for ch in value) or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return None
    return value


def is_staff(services: Services, email: str) -> bool:
    return normalise_email(email) in services.config.support_staff


SSO_REQUIRED = "Your workspace requires Google or Microsoft sign-in: use one of the buttons below."


def finish(email: str, method: str, found: list[Membership] | None = None, *, email_proven: bool = True) -> Response:
    """Sign in: straight in when there is one place to go, else to the chooser.

    Only workspaces whose policy takes ``method`` are offered. ``email_proven`` is False when only a linked SSO
    identity (not the address) was proven: such a sign-in never gets support-staff rights from the email.
    """
    services = current_services()
    email = normalise_email(email)
    every = memberships(services.session_factory, email) if found is None else found
    found = [m for m in every if m.allows(method)]
    staff = email_proven and is_staff(services, email)
    if not found and not staff:
        flash(SSO_REQUIRED if every else "That account is not active. Ask an owner of your company's Better Invoice "
              "account.", "error")
        return redirect(url_for("auth.sign_in"))
    if len(found) == 1 and not staff:
        return sign_in_as(found[0], email, method, email_proven=email_proven)
    next_path = session.get("next")
    session.clear()
    session.rotate()  # type: ignore[attr-defined]
    session["pending_choice"] = {"email": email, "method": method, "until": time.time() + PENDING_SECONDS,
                                 "options": [m.as_dict() for m in found], "staff": staff,
                                 "email_proven": email_proven}
    if next_path:
        session["next"] = next_path
    return redirect(url_for("auth.choose"))


def pending_choice() -> dict | None:
    pending = session.get("pending_choice")
    if not pending or pending.get("until", 0) < time.time():
        return None
    return pending


def sign_in_as(membership: Membership, email: str, method: str, *, email_proven: bool = True) -> Response:
    """Start a fresh session (new id) as ``membership``'s user, audit it, and go to `next` or the dashboard."""
    if not membership.allows(method):
        flash(SSO_REQUIRED, "error")
        return redirect(url_for("auth.sign_in"))
    services = current_services()
    next_path = safe_next(session.get("next"))
    staff_email = email if email_proven and is_staff(services, email) else None
    logout_user()
    session.clear()
    session.rotate()  # type: ignore[attr-defined]
    set_tenant(membership.tenant_id)
    user = db_session().get(User, membership.user_id)
    if user is None or not user.active or user.role == NO_ACCESS:  # changed since the choice was offered
        flash("That account is not active.", "error")
        return redirect(url_for("auth.sign_in"))
    login_user(user)
    # Switching tenants later lists the accounts of this email, so it must be one that was proven: the provider's
    # address when it was, else the signed-in account's own (proven when its SSO identity was linked).
    session["auth"] = {"email": email if email_proven else user.email.lower(), "method": method, "at": time.time()}
    if staff_email:
        session["staff_email"] = staff_email
    record(db_session(), membership.tenant_id, Actor.user(user.id, user.email), "auth.signed_in",
           target_type="user", target_id=user.id, after={"method": method}, origin=request_origin())
    if method == "break_glass" and membership.require_sso:
        break_glass_used(db_session(), services.redis, membership.tenant_id, user.id, user.email,
                         request_origin())
    return redirect(next_path or url_for("main.dashboard"))


def sign_in_as_staff(email: str, method: str) -> Response:
    """Support staff with no tenant of their own land on the support console."""
    logout_user()
    session.clear()
    session.rotate()  # type: ignore[attr-defined]
    session["auth"] = {"email": email, "method": method, "at": time.time()}
    session["staff_email"] = email
    return redirect(url_for("support.console"))
