"""The one rule for when a request gets a partial: an htmx request that is not boosted (DESIGN.md)."""

from __future__ import annotations

from flask import request


def wants_partial() -> bool:
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-Boosted")
