"""Google and Microsoft single sign-on (OpenID Connect, authorization code with PKCE) through Authlib's Flask client.

This module owns the protocol only: ``begin`` sends the browser to the provider, ``complete`` turns the callback
into a ``VerifiedIdentity`` or raises ``SsoError``. What the identity may do (match a linked user, link a new one,
confirm a link with an emailed code) belongs to the sign-in flow that calls it.

What is checked, and where:
- ``state``: random per attempt, kept server-side in ``flask.session`` with the PKCE verifier, the nonce, the
  provider and the redirect URI; single use, expires after ``PENDING_TTL_SECONDS``, bound to the provider.
- PKCE S256 on every request; a callback without a stored verifier is refused before any token request.
- The id_token: signature against the provider's published keys, ``aud`` = our client id (``azp`` when there are
  several audiences), ``nonce`` = the one we sent, ``exp``/``iat`` with ``ID_TOKEN_LEEWAY_SECONDS``, and ``iss``:
  Google's issuer, or for Microsoft's multi-tenant endpoint the template ``.../{tenantid}/v2.0`` filled with the
  token's own ``tid`` (which must be a GUID). An ``iss`` authorization-response parameter (RFC 9207), when the
  provider sends one, must be an issuer of that provider too (mix-up defence between our two providers).
- ``email_vouched`` is True only when the provider vouches for the address: Google ``email_verified`` is true;
  Microsoft's optional ``xms_edov`` claim ("email domain owner verified") is true. Microsoft's ``email`` claim alone
  is not verified, so without ``xms_edov`` the caller must confirm the address another way.

Codes, tokens, verifiers and nonces are never logged (Authlib logs the PKCE verifier at DEBUG; a filter on its
logger drops that record).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, redirect, request, session
from joserfc.errors import JoseError
from werkzeug.wrappers import Response  # what flask.redirect returns

from app.config import Config
from app.users.emails import normalise_email

log = logging.getLogger(__name__)

PROVIDERS = ("google", "microsoft")
LABELS = {"google": "Google", "microsoft": "Microsoft"}
SCOPE = "openid email profile"
PENDING_SESSION_KEY = "sso_pending"
PENDING_TTL_SECONDS = 600
MAX_PENDING = 5  # a few tabs may be signing in at once; older attempts are dropped
ID_TOKEN_LEEWAY_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 10
GOOGLE_ISSUER = "https://accounts.google.com"
TENANT_PLACEHOLDER = "{tenantid}"
_GUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID_RE = re.compile(f"^{_GUID}$")
_EXTENSION_KEY = "oidc"
_ENABLED_KEY = "oidc_enabled"  # the providers init_oidc registered, in display order


class _HideVerifier(logging.Filter):
    """Authlib logs the PKCE code_verifier at DEBUG ("Using code_verifier: ..."); drop that record whatever the level."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "code_verifier" not in str(record.msg)


_HIDE_VERIFIER = _HideVerifier()  # one instance, so addFilter stays idempotent across apps


class SsoError(Exception):
    """Sign-in through a provider did not give a verified identity.

    ``str(error)`` / ``.message`` is safe to show the user; ``.reason`` is a short code for logs, audit and tests
    (provider_error, state, missing_verifier, redirect_uri, missing_code, issuer, token_exchange,
    provider_unavailable, invalid_id_token, missing_email, not_enabled).
    """

    def __init__(self, message: str, reason: str = "sso_failed") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who the provider says signed in. Store and match on (issuer, tenant_id, subject), never on email."""

    provider: str
    issuer: str
    tenant_id: str | None
    subject: str
    email: str
    email_vouched: bool
    name: str


def _settings(cfg: Config, provider: str) -> tuple[str, str, str]:
    prefix = provider.upper()
    return (getattr(cfg, f"{prefix}_CLIENT_ID").strip(), getattr(cfg, f"{prefix}_CLIENT_SECRET").strip(),
            getattr(cfg, f"{prefix}_METADATA_URL").strip())


def enabled_providers(app: Flask) -> list[str]:
    """The providers whose client id and secret are both set, in display order."""
    return list(app.extensions.get(_ENABLED_KEY, ()))


def init_oidc(app: Flask, cfg: Config) -> None:
    """Register an Authlib client for each enabled provider. No network here: metadata loads on first use."""
    oauth = OAuth(app)
    enabled = tuple(p for p in PROVIDERS if all(_settings(cfg, p)[:2]))
    for provider in enabled:
        client_id, client_secret, metadata_url = _settings(cfg, provider)
        oauth.register(
            provider,
            client_id=client_id,
            client_secret=client_secret,
            server_metadata_url=metadata_url,
            client_kwargs={
                "scope": SCOPE,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": "client_secret_basic",
                "default_timeout": HTTP_TIMEOUT_SECONDS,
            },
        )
    app.extensions[_EXTENSION_KEY], app.extensions[_ENABLED_KEY] = oauth, enabled
    logging.getLogger("authlib.integrations.base_client.sync_app").addFilter(_HIDE_VERIFIER)


def _client(provider: str) -> Any:
    oauth = current_app.extensions.get(_EXTENSION_KEY)
    if oauth is None or provider not in enabled_providers(current_app):
        raise SsoError("That sign-in option is not available.", "not_enabled")
    return oauth.create_client(provider)


def _refuse(provider: str, reason: str, message: str, detail: str = "") -> SsoError:
    # Only the reason and an exception class or error code: never the code, tokens, verifier or nonce.
    log.warning("sso sign-in with %s refused: %s%s", provider, reason, f" ({detail})" if detail else "")
    return SsoError(message, reason)


def _try_again(provider: str) -> str:
    return f"Signing in with {LABELS.get(provider, provider)} did not work. Please try again."


def begin(provider: str, redirect_uri: str, login_hint: str | None = None) -> Response:
    """Redirect to the provider's authorization endpoint; state, nonce and PKCE verifier stay in the session."""
    client = _client(provider)
    extra: dict[str, str] = {}
    if login_hint:
        extra["login_hint"] = login_hint
    # 256-bit state of our own; the nonce and the PKCE verifier are Authlib's (random, 20 and 48 characters).
    state = secrets.token_urlsafe(32)
    try:
        rv = client.create_authorization_url(redirect_uri, state=state, **extra)
    except (requests.RequestException, ValueError, RuntimeError, AuthlibBaseError) as exc:
        raise _refuse(provider, "provider_unavailable",
                      f"{LABELS[provider]} sign-in is unavailable right now. Please try again in a moment.",
                      type(exc).__name__) from None
    _save_pending(rv["state"], {"provider": provider, "redirect_uri": redirect_uri,
                                "code_verifier": rv.get("code_verifier"), "nonce": rv.get("nonce")})
    response = redirect(rv["url"])
    response.headers["Cache-Control"] = "no-store"
    return response


def _save_pending(state: str, data: dict[str, Any]) -> None:
    now = time.time()
    pending = {k: v for k, v in dict(session.get(PENDING_SESSION_KEY) or {}).items()
               if isinstance(v, dict) and v.get("expires", 0) > now}
    pending[state] = {**data, "expires": now + PENDING_TTL_SECONDS}
    while len(pending) > MAX_PENDING:
        oldest = min(pending, key=lambda k: pending[k]["expires"])
        del pending[oldest]
    session[PENDING_SESSION_KEY] = pending


def _pop_pending(state: str | None) -> dict[str, Any] | None:
    """Take the attempt named by ``state`` out of the session (single use, whatever happens next)."""
    pending = dict(session.get(PENDING_SESSION_KEY) or {})
    entry = pending.pop(state, None) if state else None
    now = time.time()
    pending = {k: v for k, v in pending.items() if isinstance(v, dict) and v.get("expires", 0) > now}
    if pending:
        session[PENDING_SESSION_KEY] = pending
    else:
        session.pop(PENDING_SESSION_KEY, None)
    if not isinstance(entry, dict) or entry.get("expires", 0) <= now:
        return None
    return entry


def complete(provider: str, redirect_uri: str) -> VerifiedIdentity:
    """Handle the provider's redirect back: check state, exchange the code with PKCE, verify the id_token."""
    client = _client(provider)
    label = LABELS[provider]
    args = request.args
    pending = _pop_pending(args.get("state"))

    if args.get("error"):
        error = args["error"] if re.fullmatch(r"[a-z_]{1,64}", args["error"]) else "unrecognised"
        raise _refuse(provider, "provider_error",
                      f"{label} did not sign you in (cancelled or refused). Please try again.", error)
    if pending is None or pending.get("provider") != provider:
        raise _refuse(provider, "state",
                      "This sign-in was not started in this browser or has expired. Please start again.")
    if not pending.get("code_verifier") or not pending.get("nonce"):
        raise _refuse(provider, "missing_verifier", _try_again(provider))
    if pending.get("redirect_uri") != redirect_uri:
        raise _refuse(provider, "redirect_uri", _try_again(provider))
    code = args.get("code")
    if not code:
        raise _refuse(provider, "missing_code", _try_again(provider))

    try:
        metadata = client.load_server_metadata()
    except (requests.RequestException, ValueError) as exc:
        raise _refuse(provider, "provider_unavailable", f"{label} could not be reached. Please try again.",
                      type(exc).__name__) from None
    issuer_param = args.get("iss")
    if issuer_param is not None and not _issuer_matches(provider, str(metadata.get("issuer", "")), issuer_param):
        raise _refuse(provider, "issuer", _try_again(provider), "authorization response iss")

    try:
        token = client.fetch_access_token(redirect_uri=redirect_uri, code=code,
                                          code_verifier=pending["code_verifier"])
    except AuthlibBaseError as exc:
        raise _refuse(provider, "token_exchange", _try_again(provider), str(getattr(exc, "error", "")) or "refused") \
            from None
    except (requests.RequestException, ValueError) as exc:
        raise _refuse(provider, "provider_unavailable", f"{label} could not be reached. Please try again.",
                      type(exc).__name__) from None

    claims = _verify_id_token(provider, client, metadata, token, pending["nonce"])
    return _identity(provider, claims)


def _issuer_matches(provider: str, metadata_issuer: str, iss: str) -> bool:
    """Is ``iss`` an issuer of this provider? Microsoft: the template with a GUID in place of {tenantid}."""
    if not metadata_issuer:
        return False
    if provider == "google":
        return iss in _google_issuers(metadata_issuer)
    if TENANT_PLACEHOLDER not in metadata_issuer:
        return iss == metadata_issuer
    pattern = re.escape(metadata_issuer).replace(re.escape(TENANT_PLACEHOLDER), _GUID)
    return re.fullmatch(pattern, iss) is not None


def _google_issuers(metadata_issuer: str) -> set[str]:
    # Google documents that its id_tokens say either https://accounts.google.com or accounts.google.com.
    if metadata_issuer == GOOGLE_ISSUER:
        return {GOOGLE_ISSUER, "accounts.google.com"}
    return {metadata_issuer}


def _microsoft_issuer_for(metadata_issuer: str, tid: Any) -> str | None:
    """The issuer a Microsoft token from tenant ``tid`` must carry, or None when ``tid`` is not a tenant id."""
    if not isinstance(tid, str) or not _GUID_RE.match(tid):
        return None
    return metadata_issuer.replace(TENANT_PLACEHOLDER, tid)


def _verify_id_token(provider: str, client: Any, metadata: dict[str, Any], token: dict[str, Any],
                     nonce: str) -> dict[str, Any]:
    """Verify the id_token (signature, iss, aud, nonce, exp, iat) and return its claims."""
    metadata_issuer = metadata.get("issuer")
    if not isinstance(metadata_issuer, str) or not metadata_issuer:
        raise _refuse(provider, "invalid_id_token", _try_again(provider), "discovery document has no issuer")
    if not isinstance(token.get("id_token"), str):
        raise _refuse(provider, "invalid_id_token", _try_again(provider), "no id_token in the token response")

    if provider == "microsoft":
        def issuer_ok(claims: Any, value: Any) -> bool:
            return value == _microsoft_issuer_for(metadata_issuer, claims.get("tid"))
    else:
        accepted = _google_issuers(metadata_issuer)

        def issuer_ok(claims: Any, value: Any) -> bool:
            return value in accepted

    options = {
        "iss": {"essential": True, "validate": issuer_ok},
        "aud": {"essential": True, "value": client.client_id},
        "sub": {"essential": True},
        "nonce": {"essential": True, "value": nonce},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    try:
        claims = client.parse_id_token(token, nonce=nonce, claims_options=options, leeway=ID_TOKEN_LEEWAY_SECONDS)
    except JoseError as exc:
        claim = getattr(exc, "claim", None) or ""
        raise _refuse(provider, "invalid_id_token", _try_again(provider),
                      f"{type(exc).__name__} {claim}".strip()) from None
    except (requests.RequestException, ValueError, RuntimeError) as exc:
        raise _refuse(provider, "invalid_id_token", _try_again(provider), type(exc).__name__) from None
    if claims is None:
        raise _refuse(provider, "invalid_id_token", _try_again(provider), "no id_token")
    return dict(claims)


def _identity(provider: str, claims: dict[str, Any]) -> VerifiedIdentity:
    label = LABELS[provider]
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise _refuse(provider, "invalid_id_token", _try_again(provider), "unusable sub")
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email.strip() or len(email.strip()) > 320:
        raise _refuse(provider, "missing_email",
                      f"{label} did not share an email address for this account, so it cannot be used to sign in.")
    name = claims.get("name")
    name = name.strip()[:200] if isinstance(name, str) else ""
    if provider == "microsoft":
        tenant_id: str | None = claims["tid"]  # a GUID: the issuer check above required it
        issuer = claims["iss"]
        # Microsoft's `email` is not verified by itself; the optional xms_edov claim says the domain owner is.
        vouched = claims.get("xms_edov") is True
    else:
        tenant_id = None
        issuer = GOOGLE_ISSUER if claims["iss"] == "accounts.google.com" else claims["iss"]
        vouched = claims.get("email_verified") is True
    return VerifiedIdentity(provider=provider, issuer=issuer, tenant_id=tenant_id, subject=subject,
                            email=normalise_email(email), email_vouched=vouched, name=name)
