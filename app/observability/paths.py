"""The path we may record about a request: its route pattern where the real path carries a secret.

Public invoice links put their token in the URL. Logs, spans and error reports record ``/i/<token>`` for those
routes, never the token itself.
"""

from __future__ import annotations

from flask import has_request_context, request

SECRET_PATH_BLUEPRINTS = frozenset({"public_invoices", "review_guest"})  # review_guest: guest links, /g/<token>


def recordable_path() -> str:
    """``request.path``, or the route pattern when the path holds a secret (or no route matched a secret path)."""
    if not has_request_context():
        return ""
    if request.blueprint in SECRET_PATH_BLUEPRINTS and request.url_rule is not None:
        return request.url_rule.rule
    if request.path.startswith("/i/"):  # unmatched, e.g. a 404 under the public prefix: still maybe a token
        return "/i/…"
    if request.path.startswith("/g/"):  # the same for guest links
        return "/g/…"
    return request.path
