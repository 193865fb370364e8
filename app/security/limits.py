"""Rate limits (Flask-Limiter on Redis): the limiter, the keys it counts by, and the limits of each edge.

Limits are strings in one place so the Trust page's "rate-limited" promise is checkable here. Keys never hold
a raw email or token: those are hashed with the app secret first.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, current_app, request, session
from flask_limiter import Limiter

from app.config import Config

# Sign-in (issue 4)
CODE_REQUEST_PER_IP = "10/minute;40/hour"
CODE_REQUEST_PER_EMAIL = "5/15 minutes"
CODE_CHECK_PER_IP = "30/10 minutes"
CODE_CHECK_PER_ATTEMPT = "10/10 minutes"
SSO_CALLBACK_PER_IP = "30/10 minutes"
# Sign-up (issue 15): code requests and checks count like sign-in's, on their own counters; new workspaces per IP
SIGNUP_CODE_PER_IP = CODE_REQUEST_PER_IP
SIGNUP_CODE_PER_EMAIL = CODE_REQUEST_PER_EMAIL
SIGNUP_CHECK_PER_IP = CODE_CHECK_PER_IP
SIGNUP_CHECK_PER_ATTEMPT = CODE_CHECK_PER_ATTEMPT
SIGNUP_WORKSPACE_PER_IP = "10/hour"
# Public invoice links (issue 5)
PUBLIC_LINK_PER_TOKEN = "60/minute"  # noqa: S105 (a limit, not a secret)
PUBLIC_LINK_PER_IP = "120/minute"
# Webhooks (later issues)
WEBHOOK_PER_IP = "600/minute"
# ConnectWise review callbacks (issue 11): per callback URL token, i.e. per tenant
CALLBACK_PER_TOKEN = "300/minute"  # noqa: S105 (a limit, not a secret)


def client_ip() -> str:
    """The client's address; ProxyFix has already applied the trusted proxy count."""
    return request.remote_addr or "unknown"


def hashed(value: str) -> str:
    """A keyed hash for limiter keys, so Redis never holds an email or a token."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def email_key() -> str:
    return "email:" + hashed((request.form.get("email") or "").strip().lower())


def attempt_key() -> str:
    """The browser's pending sign-in attempt (one per code request)."""
    return "attempt:" + hashed(str(session.get("signin_attempt") or client_ip()))


def signup_attempt_key() -> str:
    """The browser's pending sign-up attempt (one per code request)."""
    return "signup-attempt:" + hashed(str(session.get("signup_attempt") or client_ip()))


def view_arg_key(name: str):
    """A key on a URL part (e.g. a public link's token), hashed."""
    def _key() -> str:
        return f"{name}:" + hashed(str((request.view_args or {}).get(name, "")))
    return _key


limiter = Limiter(client_ip, key_prefix="bi-rl", headers_enabled=True, strategy="moving-window")


def init_limits(app: Flask, cfg: Config) -> None:
    app.config["RATELIMIT_STORAGE_URI"] = cfg.REDIS_URL
    app.config["RATELIMIT_ENABLED"] = cfg.RATE_LIMITS_ENABLED
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 3, "socket_timeout": 5}
    limiter.init_app(app)


def reset_limits() -> None:
    """Clear every counter (tests and ops)."""
    limiter.reset()
