"""The one rule for when a request gets a partial: an htmx request that is not boosted (DESIGN.md).

A back-button cache miss makes htmx ask for the pushed URL with ``HX-History-Restore-Request``; that answer replaces
the whole page, so it gets the whole page. Every response whose body depended on these headers says so with ``Vary``,
so no cache hands a fragment to a full-page load or the other way round.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request

VARY_HEADERS = ("HX-Request", "HX-Boosted", "HX-History-Restore-Request")


def wants_partial() -> bool:
    g.varies_by_htmx = True
    if request.headers.get("HX-History-Restore-Request"):
        return False
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-Boosted")


def init_htmx(app: Flask) -> None:
    """Add ``Vary`` to responses that were shaped by the htmx request headers."""

    @app.after_request
    def _vary(response: Any) -> Any:
        if g.get("varies_by_htmx") or "HX-Redirect" in response.headers:
            for header in VARY_HEADERS:
                response.vary.add(header)
        return response
