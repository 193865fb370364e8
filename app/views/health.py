"""/healthz: 200 only when PostgreSQL and Redis both answer."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.services import current_services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    checks = {"postgres": False, "redis": False}
    services = current_services()
    try:
        with services.engine.connect() as conn:
            conn.execute(text("select 1"))
        checks["postgres"] = True
    except Exception:
        current_app.logger.warning("healthz: postgres did not answer")
    try:
        checks["redis"] = bool(services.redis.ping())
    except Exception:
        current_app.logger.warning("healthz: redis did not answer")
    ok = all(checks.values())
    return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503
