"""What a job runs inside: an app context (created once per worker process), the job's log context, and the app's
``Services``, handed to the job function as its first argument (RQ passes only the ids)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from flask import current_app, has_app_context

from app.observability.logs import request_id_var, tenant_id_var
from app.services import Services, services_of

P = ParamSpec("P")
R = TypeVar("R")
_worker_app: dict[str, Any] = {}


def _ensure_app() -> Any:
    if has_app_context():
        return None
    app = _worker_app.get("app")
    if app is None:
        from app import create_app

        app = _worker_app["app"] = create_app()
    ctx = app.app_context()
    ctx.push()
    return ctx


def job(func: Callable[Concatenate[Services, P], R]) -> Callable[P, R]:
    """Run ``func(services, *ids)`` inside an app context, with the job and tenant ids on every log line; the job is
    enqueued and called with the ids alone."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = _ensure_app()
        from rq import get_current_job

        current = get_current_job()
        tokens = (request_id_var.set(f"job:{current.id}" if current else None),
                  tenant_id_var.set(str(args[0]) if args and _looks_like_tenant(args[0]) else None))
        try:
            return func(services_of(current_app), *args, **kwargs)
        finally:
            request_id_var.reset(tokens[0])
            tenant_id_var.reset(tokens[1])
            if ctx is not None:
                ctx.pop()

    return wrapper


def _looks_like_tenant(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 36 and value.count("-") == 4
