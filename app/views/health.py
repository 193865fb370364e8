"""/healthz: 200 only when PostgreSQL and Redis both answer."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    checks = {"postgres": False, "redis": False}
    try:
        with current_app.extensions["engine"].connect() as conn:
            conn.execute(text("select 1"))
        checks["postgres"] = True
    except Exception:
        current_app.logger.warning("healthz: postgres did not answer")
    try:
        checks["redis"] = bool(current_app.extensions["redis"].ping())
    except Exception:
        current_app.logger.warning("healthz: redis did not answer")
    ok = all(checks.values())
    return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503
