"""SSO sign-in routes and account linking (the protocol itself is in ``app.auth.oidc``).

An identity is (issuer, provider tenant, subject); later sign-ins match on that, never on email. The first time an
identity meets a user, the email must be vouched for by the provider; where it cannot vouch, the person confirms the
address once with an emailed code before the link is made. Nothing is ever linked by an unverified email.
"""

from __future__ import annotations

import time
import uuid

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response  # what flask.redirect returns

from app.audit.log import Actor, record
from app.audit.web import request_origin
from app.auth import codes
from app.auth.directory import Membership, identity_memberships, memberships
from app.auth.models import SsoIdentity
from app.auth.oidc import PROVIDERS, SsoError, VerifiedIdentity, begin, complete, enabled_providers
from app.auth.signin import finish, safe_next
from app.onboarding.signup import INTENT_SECONDS, SSO_IDENTITY_KEY, SSO_INTENT_KEY, mark_sso_intent, take_sso_intent
from app.security.limits import SSO_CALLBACK_PER_IP, limiter
from app.services import current_services
from app.tenancy import tenant_session

bp = Blueprint("sso", __name__)


def _redirect_uri(provider: str) -> str:
    cfg = current_services().config
    path = url_for("sso.callback", provider=provider)
    # In production the registered URI is on BASE_URL; elsewhere the host the browser used (loopback in tests).
    return cfg.BASE_URL.rstrip("/") + path if cfg.is_production else url_for("sso.callback", provider=provider,
                                                                             _external=True)


def _failed(message: str, status: int = 400) -> tuple[str, int]:
    return render_template("auth/sign_in.html", email="", error=None, sso_error=message,
                           providers=enabled_providers(current_app), next="",
                           dev=current_services().config.is_development), status


@bp.get("/sign-in/sso/<provider>")
def start(provider: str):
    if provider not in PROVIDERS or provider not in enabled_providers(current_app):
        return _failed("That sign-in option is not available.", 404)
    if request.args.get("intent") == "sign_up":  # "Start free" with a provider: the callback hands over to sign-up
        mark_sso_intent(session, provider)
    else:
        session.pop(SSO_INTENT_KEY, None)
    next_path = safe_next(request.args.get("next"))
    if next_path:
        session["next"] = next_path
    try:
        return begin(provider, _redirect_uri(provider), request.args.get("login_hint") or None)
    except SsoError as exc:
        return _failed(exc.message, 503)


@bp.get("/sign-in/sso/<provider>/callback")
@limiter.limit(SSO_CALLBACK_PER_IP)
def callback(provider: str):
    if provider not in PROVIDERS:
        return _failed("That sign-in option is not available.", 404)
    try:
        identity = complete(provider, _redirect_uri(provider))
    except SsoError as exc:
        return _failed(exc.message, 503 if exc.reason == "provider_unavailable" else 400)
    if take_sso_intent(session, provider):
        session[SSO_IDENTITY_KEY] = {"provider": provider, "email": identity.email, "vouched": identity.email_vouched,
                                     "name": identity.name, "until": time.time() + INTENT_SECONDS}
        return redirect(url_for("signup.from_provider"))
    factory = current_services().session_factory
    linked = identity_memberships(factory, identity.issuer, identity.tenant_id, identity.subject)
    if identity.email_vouched:
        fresh = [m for m in memberships(factory, identity.email) if m.user_key not in {x.user_key for x in linked}]
        _link(identity, fresh)
        found = linked + fresh
        if not found:
            return _failed(f"{identity.email} has no Better Invoice account. Ask an owner of your company's "
                           f"account to add you.", 403)
        return finish(identity.email, f"sso_{provider}", found)
    if linked:
        return finish(identity.email, f"sso_{provider}", linked, email_proven=False)
    if not memberships(factory, identity.email):
        return _failed(f"{identity.email} has no Better Invoice account. Ask an owner of your company's "
                       f"account to add you.", 403)
    # The provider could not vouch for this email: confirm it once with a code before linking.
    attempt_id = codes.start_attempt(current_services().redis, identity.email, request.remote_addr or "",
                                     request.headers.get("User-Agent", ""), purpose="link")
    session["signin_attempt"], session["signin_email"] = attempt_id, identity.email
    session["sso_link"] = {"provider": identity.provider, "issuer": identity.issuer, "tenant_id": identity.tenant_id,
                           "subject": identity.subject, "email": identity.email, "name": identity.name}
    return redirect(url_for("auth.enter_code"))


def link_confirmed(link: dict, email: str) -> Response:
    """The emailed code proved the address the provider could not vouch for: link, then sign in."""
    identity = VerifiedIdentity(link["provider"], link["issuer"], link["tenant_id"], link["subject"], email, True,
                                link.get("name", ""))
    found = memberships(current_services().session_factory, email)
    _link(identity, found)
    return finish(email, f"sso_{identity.provider}", found)


def _link(identity: VerifiedIdentity, targets: list[Membership]) -> None:
    for m in targets:
        with tenant_session(m.tenant_id, current_services().session_factory) as s:
            exists = s.execute(select(SsoIdentity.id).where(
                SsoIdentity.issuer == identity.issuer, SsoIdentity.provider_tenant == (identity.tenant_id or ""),
                SsoIdentity.subject == identity.subject)).first()
            if exists:
                continue
            s.add(SsoIdentity(id=uuid.uuid4(), tenant_id=m.tenant_id, user_id=m.user_id, provider=identity.provider,
                              issuer=identity.issuer, provider_tenant=identity.tenant_id or "",
                              subject=identity.subject, email=identity.email, last_used_at=func.now()))
            record(s, m.tenant_id, Actor.user(m.user_id, identity.email), "auth.sso_linked", target_type="user",
                   target_id=m.user_id, after={"provider": identity.provider, "issuer": identity.issuer},
                   origin=request_origin())
