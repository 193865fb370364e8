"""CORS: which origins may read our responses cross-site (``CORS_ALLOWED_ORIGINS``), and which origins may send
us unsafe requests at all (ours and the listed ones; the CSRF check refuses the rest).

No credentials are ever allowed cross-origin: everything a signed-in person does is same-origin htmx, so a listed
origin only ever reads what anyone could read without a session (public links, health). Allowing credentials
would let script on a listed site, or an XSS there, act as our signed-in users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request

from app.config import Config, origin_of, parse_origins

ALLOWED_METHODS = ("GET", "HEAD", "POST")
ALLOWED_HEADERS = ("Content-Type", "HX-Request", "HX-Current-URL", "HX-Target", "HX-Trigger")
PREFLIGHT_MAX_AGE = "600"
_EXTENSION = "origin_policy"


@dataclass(frozen=True)
class OriginPolicy:
    """Our own origin, the listed origins, and whether the request's own host also counts as ours."""

    own: str
    listed: frozenset[str]
    # Outside production the app is served on whatever port a test or `make dev` picked, so the origin the
    # browser is actually on counts as ours too; a cross-site page can never make a browser send that pair.
    trust_request_host: bool = False

    def is_listed(self, origin: str) -> bool:
        return origin in self.listed

    def may_send_unsafe(self, origin: str, request_origin: str) -> bool:
        """May a request carrying ``Origin: origin`` change anything? (``null`` never may.)"""
        if origin == self.own or origin in self.listed:
            return True
        return self.trust_request_host and origin == request_origin


def policy_for(cfg: Config) -> OriginPolicy:
    """The origin policy of a configuration (its origins were validated with the config)."""
    return OriginPolicy(own=origin_of(cfg.BASE_URL),
                        listed=parse_origins(cfg.CORS_ALLOWED_ORIGINS, https_only=cfg.is_production),
                        trust_request_host=not cfg.is_production)


def origin_policy(app: Flask) -> OriginPolicy:
    """The app's origin policy (``init_cors`` builds it)."""
    return app.extensions[_EXTENSION]


def request_origin() -> str:
    """The origin this request was addressed to (scheme and host, as the proxy fix sees them)."""
    return origin_of(request.host_url)


def init_cors(app: Flask, cfg: Config) -> None:
    policy = app.extensions[_EXTENSION] = policy_for(cfg)

    @app.before_request
    def _preflight() -> Any:
        origin = request.headers.get("Origin")
        wanted = request.headers.get("Access-Control-Request-Method")
        if request.method != "OPTIONS" or origin is None or wanted is None:
            return None
        if not policy.is_listed(origin) or wanted.upper() not in ALLOWED_METHODS or request.url_rule is None:
            return None  # answered as any OPTIONS request is, without a single Access-Control-Allow-* header
        g.cors_preflight_answered = True
        response = app.make_response(("", 204))
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = ", ".join(ALLOWED_METHODS)
        response.headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        return response

    @app.after_request
    def _cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if policy.listed or origin is not None:
            # The answer depends on Origin, so no shared cache may hand one origin's answer to another.
            response.vary.add("Origin")
        if g.get("cors_preflight_answered"):
            return response
        preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        if origin is not None and policy.is_listed(origin) and not preflight:
            response.headers.setdefault("Access-Control-Allow-Origin", origin)
        else:
            # Only this module grants cross-origin reads: a stray header from elsewhere is a bug, never a policy.
            for name in {n for n in response.headers.keys() if n.lower().startswith("access-control-allow-")}:
                del response.headers[name]
        return response
