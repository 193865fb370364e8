"""Sign-in with an emailed code, choosing a tenant, switching, signing out, and a user's own sessions."""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, logout_user

from app.audit.log import record
from app.audit.web import current_actor, request_origin
from app.auth import codes
from app.auth.directory import Membership, memberships
from app.auth.oidc import enabled_providers
from app.auth.signin import finish, pending_choice, safe_next, sign_in_as, sign_in_as_staff
from app.auth.sso import link_confirmed
from app.auth.user_agents import describe
from app.security.limits import (
    CODE_CHECK_PER_ATTEMPT,
    CODE_CHECK_PER_IP,
    CODE_REQUEST_PER_EMAIL,
    CODE_REQUEST_PER_IP,
    attempt_key,
    email_key,
    limiter,
)
from app.security.server_sessions import end_user_sessions, user_sessions
from app.services import current_services
from app.tenancy import db_session
from app.users.emails import is_valid_email, normalise_email

bp = Blueprint("auth", __name__)


def _providers() -> list[str]:
    return enabled_providers(current_app)


def _sign_in_page(email: str = "", error: str | None = None, status: int = 200):
    return render_template("auth/sign_in.html", email=email, error=error, providers=_providers(),
                           next=safe_next(request.values.get("next")) or "",
                           dev=current_services().config.is_development), status


@bp.get("/sign-in")
def sign_in():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or url_for("main.dashboard"))
    return _sign_in_page()


@bp.post("/sign-in")
@limiter.limit(CODE_REQUEST_PER_IP)
@limiter.limit(CODE_REQUEST_PER_EMAIL, key_func=email_key)
def request_code():
    return _start_code("sign_in")


@bp.get("/sign-in/break-glass")
def break_glass():
    """The owners' way in by emailed code when their workspace requires SSO and the provider is down."""
    return render_template("auth/break_glass.html", email="", error=None), 200


@bp.post("/sign-in/break-glass")
@limiter.limit(CODE_REQUEST_PER_IP)
@limiter.limit(CODE_REQUEST_PER_EMAIL, key_func=email_key)
def request_break_glass():
    return _start_code("break_glass")


def _start_code(purpose: str):
    """Record the attempt and go to the code page: the same answer for every email (the job decides the rest)."""
    email = normalise_email(request.form.get("email"))
    if not is_valid_email(email):
        message = "Enter your work email address, like name@company.com."
        if purpose == "break_glass":
            return render_template("auth/break_glass.html", email=email, error=message), 422
        return _sign_in_page(email, message, 422)
    attempt_id = codes.start_attempt(current_services().redis, email, request.remote_addr or "",
                                     request.headers.get("User-Agent", ""), purpose=purpose)
    next_path = safe_next(request.form.get("next"))
    session["signin_attempt"] = attempt_id
    session["signin_email"] = email
    session["break_glass"] = purpose == "break_glass"
    session.pop("sso_link", None)  # a plain code request abandons any half-done SSO link
    if next_path:
        session["next"] = next_path
    return redirect(url_for("auth.enter_code"))


def _code_page(email: str, error: str | None, status: int = 200):
    return render_template("auth/code.html", email=email, error=error, linking=bool(session.get("sso_link")),
                           break_glass=bool(session.get("break_glass"))), status


@bp.get("/sign-in/code")
def enter_code():
    if not session.get("signin_attempt"):
        return redirect(url_for("auth.sign_in"))
    return _code_page(session.get("signin_email", ""), None)


@bp.post("/sign-in/code")
@limiter.limit(CODE_CHECK_PER_IP)
@limiter.limit(CODE_CHECK_PER_ATTEMPT, key_func=attempt_key)
def check_code():
    attempt_id = session.get("signin_attempt")
    email = session.get("signin_email")
    if not attempt_id or not email:
        flash("Ask for a new code to sign in.", "info")
        return redirect(url_for("auth.sign_in"))
    typed = (request.form.get("code") or "").strip()
    redis = current_services().redis
    pending = codes.attempt(redis, attempt_id)  # read before the check, which consumes it on success
    result = codes.check_code(redis, attempt_id, email, typed, request.remote_addr or "")
    if result in (codes.CheckResult.LOCKED, codes.CheckResult.PAUSED):
        for key in ("signin_attempt", "signin_email", "sso_link", "break_glass"):
            session.pop(key, None)
        flash(_PAUSED if result is codes.CheckResult.PAUSED else "Too many wrong codes. Ask for a new code.",
              "error")
        return redirect(url_for("auth.sign_in"))
    if result is not codes.CheckResult.OK:
        message = "That code is not right, or it has expired. Check the newest email, or ask for a new code."
        return _code_page(email, message, 422)
    link = session.pop("sso_link", None)
    for key in ("signin_attempt", "signin_email", "break_glass"):
        session.pop(key, None)
    if link:
        return link_confirmed(link, email)
    purpose = pending.purpose if pending else "sign_in"
    return finish(email, "break_glass" if purpose == "break_glass" else "email_code")


_PAUSED = ("Too many wrong codes for this email: email codes are paused for now. Sign in with Google or Microsoft, "
           "or ask for a code again later.")


@bp.route("/sign-in/choose", methods=["GET", "POST"])
def choose():
    """Pick the tenant after sign-in (the options the proof covered), or switch while signed in."""
    pending = pending_choice()
    if pending is not None:
        options = [Membership.from_dict(d) for d in pending["options"]]
        email, method = pending["email"], pending["method"]
        staff, proven = bool(pending.get("staff")), bool(pending.get("email_proven", True))
    elif current_user.is_authenticated and getattr(current_user, "role", "") != "support":
        email = _signed_in_email()
        method = session.get("auth", {}).get("method", "switch")
        options = [m for m in memberships(current_services().session_factory, email) if m.allows(method)]
        staff = proven = bool(session.get("staff_email"))
    else:
        flash("Sign in again to choose an account.", "info")
        return redirect(url_for("auth.sign_in"))
    if request.method == "POST":
        choice = request.form.get("tenant_id", "")
        if choice == "support" and staff:
            return sign_in_as_staff(email, method)
        for m in options:
            if str(m.tenant_id) == choice:
                return sign_in_as(m, email, method, email_proven=proven)
        abort(400, description="Choose one of the accounts listed.")
    return render_template("auth/choose.html", options=options, staff=staff,
                           current=str(current_user.tenant_id) if current_user.is_authenticated else "")


def _signed_in_email() -> str:
    return session.get("auth", {}).get("email") or current_user.email


@bp.post("/sign-out")
def sign_out():
    if current_user.is_authenticated and getattr(current_user, "tenant_id", None):
        record(db_session(), current_user.tenant_id, current_actor(), "auth.signed_out", target_type="user",
               target_id=current_user.id, origin=request_origin())
    logout_user()
    session.destroy()  # type: ignore[attr-defined]
    flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))



@bp.get("/account/sessions")
@login_required
def sessions():
    found = user_sessions(current_services().redis, current_user.get_id(), getattr(session, "sid", None))
    return render_template("auth/sessions.html", sessions=found, browser=describe)


@bp.post("/account/sessions/end")
@login_required
def end_sessions():
    which = request.form.get("session", "others")
    redis = current_services().redis
    sid = getattr(session, "sid", None)
    if which == "others":
        ended = end_user_sessions(redis, current_user.get_id(), keep_sid=sid)
    elif re.fullmatch(r"[0-9a-f]{16}", which):
        ended = end_user_sessions(redis, current_user.get_id(), keep_sid=sid, only_public_id=which)
    else:
        abort(400, description="Choose a session to end.")
    if getattr(current_user, "tenant_id", None) and ended:
        record(db_session(), current_user.tenant_id, current_actor(), "auth.sessions_ended", target_type="user",
               target_id=current_user.id, after={"ended": ended}, origin=request_origin())
    flash(f"Ended {ended} other session{'s' if ended != 1 else ''}.", "success")
    return redirect(url_for("auth.sessions"))
