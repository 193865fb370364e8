"""CSRF: one random token per session, required on every unsafe request (header or form field), and no unsafe
request from a foreign ``Origin`` at all.

The Origin check lives here, not in CORS, because it is the same defence: a page on another site must not be able
to make a signed-in browser change anything, even if a token ever leaked.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, abort, request, session

from app.security.cors import origin_policy, request_origin

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
HEADER = "X-CSRF-Token"
FORM_FIELD = "csrf_token"
_SESSION_KEY = "_csrf"


def csrf_token() -> str:
    """The session's token, created on first use (rendered in hx-headers on <body> and in forms)."""
    token = session.get(_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def init_csrf(app: Flask) -> None:
    exempt: set[str] = app.extensions.setdefault("csrf_exempt", set())
    origins = origin_policy(app)

    @app.before_request
    def _check_csrf() -> None:
        if request.method in SAFE_METHODS or request.endpoint in exempt:
            return
        origin = request.headers.get("Origin")
        # No Origin (older browsers, non-browser clients) leaves the token as the guard; "null" (sandboxed frames,
        # file: pages, some redirects) is never ours.
        if origin is not None and not origins.may_send_unsafe(origin, request_origin()):
            abort(403, description="This request came from another site, so it was refused.")
        expected = session.get(_SESSION_KEY)
        given = request.headers.get(HEADER) or request.form.get(FORM_FIELD, "")
        if not expected or not given or not hmac.compare_digest(str(expected), str(given)):
            abort(400, description="The form was stale or came from another site. Reload the page and try again.")

    app.jinja_env.globals["csrf_token"] = csrf_token


def csrf_exempt(app: Flask, endpoint: str) -> None:
    """Exempt one endpoint (signed webhooks only)."""
    app.extensions.setdefault("csrf_exempt", set()).add(endpoint)
