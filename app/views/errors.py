"""Error pages for 400/403/404/405/410/422/429/500/503: a clear message, the request id, never a stack trace.

A ConnectWise call that found no slot in the tenant's request budget within a page's short wait answers 503
"ConnectWise is busy" with ``Retry-After``, as a page or, for htmx, as a toast.
"""

from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from app.connectwise.errors import BUSY_MESSAGE, Busy
from app.observability.paths import recordable_path
from app.services import current_services
from app.views.htmx import wants_partial

log = logging.getLogger(__name__)

TITLES = {
    400: ("Bad request", "Something in that request was not right."),
    401: ("Sign in required", "Sign in to continue."),
    403: ("Not allowed", "Your role does not allow this. Ask an owner or admin of your account."),
    404: ("Not found", "There is nothing here. It may have been moved or removed."),
    405: ("Not allowed", "That action is not available here."),
    410: ("Gone", "This link is no longer valid."),
    413: ("Too large", "That upload is too large."),
    422: ("Check the form", "Some of what you entered needs fixing."),
    429: ("Slow down", "Too many requests. Wait a moment and try again."),
    500: ("Something went wrong", "We hit an error and have been told about it. Try again in a moment."),
    503: ("Unavailable", "The service is briefly unavailable. Try again in a moment."),
}


def render_error(code: int, description: str | None = None,
                 headers: dict[str, str] | None = None):
    title, default = TITLES.get(code, TITLES[500] if code >= 500 else TITLES[400])
    # Only descriptions we wrote ourselves are shown; werkzeug's defaults are replaced by ours.
    message = description if description and not _is_werkzeug_default(code, description) else default
    context = {"code": code, "title": title, "message": message, "request_id": g.get("request_id")}
    if wants_partial():
        swap = {"HX-Retarget": "#toasts", "HX-Reswap": "beforeend", **(headers or {})}
        return render_template("errors/_error.html", **context), code, swap
    return render_template("errors/error.html", **context), code, headers or {}


def _is_werkzeug_default(code: int, description: str) -> bool:
    try:
        from werkzeug.exceptions import default_exceptions

        return description == default_exceptions[code].description
    except KeyError:
        return False


def init_error_pages(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if isinstance(exc, InternalServerError):
            return _server_error(exc)
        if exc.code == 429:  # the limiter's description is its limit string; people get our sentence instead
            return render_error(429)
        return render_error(exc.code or 500, exc.description)

    @app.errorhandler(Busy)
    def _connectwise_busy(exc: Busy):
        return render_error(503, BUSY_MESSAGE.format(seconds=exc.retry_after),
                            {"Retry-After": str(exc.retry_after)})

    @app.errorhandler(Exception)
    def _server_error(exc: Exception):
        original = getattr(exc, "original_exception", None) or exc
        log.error("unhandled %s", type(original).__name__, exc_info=original)
        current_services().errors.capture(original, path=recordable_path(), method=request.method)
        return render_error(500)
