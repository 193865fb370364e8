"""Self-serve sign-up pages ("Start free"): work email and code, or Google / Microsoft, then the workspace name.

No enumeration: asking for a code records an attempt and enqueues the mail job whatever the address, and the code
page says the same for everyone. Only once the code (or a provider that vouches) has proven the address does the
page say the address already has a workspace, and then it offers to sign in there or to make another.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from app.audit.web import request_origin
from app.auth import codes
from app.auth.directory import Membership, memberships
from app.auth.oidc import LABELS, enabled_providers
from app.auth.signin import sign_in_as
from app.billing.plans import TRIAL_DAYS
from app.onboarding.signup import (
    SSO_IDENTITY_KEY,
    SignupError,
    browser_zone,
    clean_person_name,
    clean_workspace_name,
    create_workspace,
    is_free_mail,
)
from app.security.limits import (
    SIGNUP_CHECK_PER_ATTEMPT,
    SIGNUP_CHECK_PER_IP,
    SIGNUP_CODE_PER_EMAIL,
    SIGNUP_CODE_PER_IP,
    SIGNUP_WORKSPACE_PER_IP,
    email_key,
    limiter,
    signup_attempt_key,
)
from app.services import current_services
from app.users.emails import is_valid_email, normalise_email

bp = Blueprint("signup", __name__)

PROVEN_SECONDS = 1800  # time to name the workspace after proving the address
_ATTEMPT, _EMAIL, _PROVEN = "signup_attempt", "signup_email", "signup_proven"


def _start_page(email: str = "", error: str | None = None, status: int = 200) -> tuple[str, int]:
    return render_template("onboarding/start.html", email=email, error=error,
                           providers=enabled_providers(current_app),
                           dev=current_services().config.is_development), status


@bp.get("/start")
def start() -> Any:
    return _start_page()


@bp.post("/start")
@limiter.limit(SIGNUP_CODE_PER_IP)
@limiter.limit(SIGNUP_CODE_PER_EMAIL, key_func=email_key)
def request_code() -> Any:
    email = normalise_email(request.form.get("email"))
    if not is_valid_email(email):
        return _start_page(email, "Enter your work email address, like name@company.com.", 422)
    _begin_code(email)
    return redirect(url_for("signup.enter_code"))


def _begin_code(email: str) -> None:
    """The same work for every address: an attempt in Redis and the mail job, which always sends a code."""
    attempt_id = codes.start_attempt(current_services().redis, email, request.remote_addr or "",
                                     request.headers.get("User-Agent", ""), purpose="sign_up")
    session.pop(_PROVEN, None)
    session[_ATTEMPT], session[_EMAIL] = attempt_id, email


def _code_page(email: str, error: str | None = None, status: int = 200, unvouched: str = "") -> tuple[str, int]:
    return render_template("onboarding/code.html", email=email, error=error, unvouched=unvouched), status


@bp.get("/start/code")
def enter_code() -> Any:
    if not session.get(_ATTEMPT):
        return redirect(url_for("signup.start"))
    return _code_page(session.get(_EMAIL, ""), unvouched=session.get("signup_unvouched", ""))


@bp.post("/start/code")
@limiter.limit(SIGNUP_CHECK_PER_IP)
@limiter.limit(SIGNUP_CHECK_PER_ATTEMPT, key_func=signup_attempt_key)
def check_code() -> Any:
    attempt_id, email = session.get(_ATTEMPT), session.get(_EMAIL)
    if not attempt_id or not email:
        flash("Ask for a new code to start your workspace.", "info")
        return redirect(url_for("signup.start"))
    typed = (request.form.get("code") or "").strip()
    result = codes.check_code(current_services().redis, attempt_id, email, typed, request.remote_addr or "")
    if result in (codes.CheckResult.LOCKED, codes.CheckResult.PAUSED):
        _forget_attempt()
        flash("Too many wrong codes. Ask for a new code." if result is codes.CheckResult.LOCKED else
              "Too many wrong codes for this email: codes are paused for now. Continue with Google or Microsoft, "
              "or try again later.", "error")
        return redirect(url_for("signup.start"))
    if result is not codes.CheckResult.OK:
        return _code_page(email, "That code is not right, or it has expired. Check the newest email, or ask for "
                                 "a new code.", 422)
    _forget_attempt()
    _prove(email, "email_code", "")
    return redirect(url_for("signup.workspace"))


def _forget_attempt() -> None:
    for key in (_ATTEMPT, _EMAIL, "signup_unvouched"):
        session.pop(key, None)


def _prove(email: str, method: str, name: str) -> None:
    session[_PROVEN] = {"email": email, "method": method, "name": name, "until": time.time() + PROVEN_SECONDS}


def _proven() -> dict | None:
    proven = session.get(_PROVEN)
    if not isinstance(proven, dict) or float(proven.get("until", 0)) < time.time():
        return None
    return proven


@bp.get("/start/provider")
@limiter.limit(SIGNUP_CODE_PER_IP)
def from_provider() -> Any:
    """Back from Google or Microsoft: a vouched address is proven; any other gets an emailed code first."""
    identity = session.pop(SSO_IDENTITY_KEY, None)
    if not isinstance(identity, dict) or float(identity.get("until", 0)) < time.time():
        return redirect(url_for("signup.start"))
    email, provider = normalise_email(identity.get("email")), str(identity.get("provider", ""))
    if identity.get("vouched"):
        _prove(email, f"sso_{provider}", str(identity.get("name", "")))
        return redirect(url_for("signup.workspace"))
    _begin_code(email)
    session["signup_unvouched"] = LABELS.get(provider, provider)
    return redirect(url_for("signup.enter_code"))


def _workspace_page(proven: dict, values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                    status: int = 200) -> tuple[str, int]:
    values = values or {"workspace": "", "name": proven.get("name", ""), "timezone": ""}
    return render_template("onboarding/workspace.html", email=proven["email"], values=values, errors=errors or {},
                           free_mail=is_free_mail(proven["email"])), status


@bp.get("/start/workspace")
def workspace() -> Any:
    proven = _proven()
    if proven is None:
        flash("Prove your email first: ask for a code, or continue with Google or Microsoft.", "info")
        return redirect(url_for("signup.start"))
    if request.args.get("another") != "1":
        found = memberships(current_services().session_factory, proven["email"])
        if found:
            return render_template("onboarding/existing.html", email=proven["email"], method=proven["method"],
                                   options=found)
    return _workspace_page(proven)


@bp.post("/start/workspace")
@limiter.limit(SIGNUP_WORKSPACE_PER_IP)
def create() -> Any:
    proven = _proven()
    if proven is None:
        flash("Prove your email first: ask for a code, or continue with Google or Microsoft.", "info")
        return redirect(url_for("signup.start"))
    values = {k: (request.form.get(k) or "")[:400] for k in ("workspace", "name", "timezone")}
    errors: dict[str, str] = {}
    name = person = ""
    try:
        name = clean_workspace_name(values["workspace"])
    except SignupError as exc:
        errors[exc.field] = str(exc)
    try:
        person = clean_person_name(values["name"])
    except SignupError as exc:
        errors[exc.field] = str(exc)
    if errors:
        return _workspace_page(proven, values, errors, 422)
    session.pop(_PROVEN, None)  # one workspace per proof: a second submit finds no proof
    made = create_workspace(current_services().session_factory, name=name, email=proven["email"], person=person,
                            timezone=browser_zone(values["timezone"]), method=proven["method"],
                            origin=request_origin())
    response = sign_in_as(Membership(made.tenant_id, made.tenant_name, made.owner_id, "owner"), proven["email"],
                          proven["method"])
    # After sign_in_as: it starts a fresh session, which would drop a message flashed before it.
    flash(f"Welcome to Better Invoice: {made.tenant_name} is on a {TRIAL_DAYS}-day Pro trial.", "success")
    return response


@bp.post("/start/existing")
def existing() -> Response:
    """Sign in to one of the workspaces the proven address already belongs to."""
    proven = _proven()
    if proven is None:
        flash("Sign in again to choose an account.", "info")
        return redirect(url_for("auth.sign_in"))
    choice = request.form.get("tenant_id", "")
    for m in memberships(current_services().session_factory, proven["email"]):
        if str(m.tenant_id) == choice:
            return sign_in_as(m, proven["email"], proven["method"])
    abort(400, description="Choose one of the workspaces listed.")
