"""The status mapping section of the review settings page: which ConnectWise billing status approve, reject and
close write back. It loads after the page (htmx), so a slow or absent ConnectWise never holds the page up; the
pickers list the tenant's own statuses, with the default each decision takes when none is picked."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.connectwise import errors as cw_errors
from app.connectwise.records import InvalidRecord
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.review import status_map
from app.review.status_map import StatusMapError
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.views.htmx import wants_partial

bp = Blueprint("review_status_map", __name__, url_prefix="/settings/review/status-map")


def _context(picked: dict | None = None, error: StatusMapError | None = None, saved: str | None = None
             ) -> dict[str, Any]:
    session, services, tenant_id = db_session(), current_services(), required_tenant_id()
    stored = status_map.stored_map(session, tenant_id)
    try:
        statuses = status_map.load_catalog(session, services.redis, tenant_id, lambda: tenant_client(
            session, services.keyring, services.config, services.redis))
    except NotConnected:
        return {"status_map": {"loaded": False, "problem": "Connect ConnectWise first: the statuses come from your "
                                                           "ConnectWise."}, "saved_message": saved}
    except cw_errors.Busy:
        raise
    except (cw_errors.ConnectWiseError, InvalidRecord) as exc:
        return {"status_map": {"loaded": False, "problem": f"Could not read your billing statuses from ConnectWise: "
                                                           f"{exc}"}, "saved_message": saved}
    defaults = status_map.default_map(statuses)
    names = {s.id: s.name for s in statuses}
    section: dict[str, Any] = {
        "loaded": True, "problem": None, "statuses": statuses, "decisions": status_map.DECISIONS,
        "labels": status_map.LABELS, "picked": picked if picked is not None else
        {d: str(v) for d, v in stored.items()}, "defaults": {d: names.get(v) if v else None
                                                           for d, v in defaults.items()},
        "errors": {error.field: error.message} if error else {},
        "missing": {d: v for d, v in stored.items() if v not in names},
    }
    return {"status_map": section, "saved_message": saved}


@bp.get("/")
@permission_page("review_rules")
def section():
    return render_template("review/_status_map.html", **_context())


@bp.post("/")
@permission_page("review_rules")
def save():
    session, services, tenant_id = db_session(), current_services(), required_tenant_id()
    raw = {d: request.form.get(d, "") for d in status_map.DECISIONS}
    try:
        statuses = status_map.load_catalog(session, services.redis, tenant_id, lambda: tenant_client(
            session, services.keyring, services.config, services.redis))
        picked = status_map.validate(raw, statuses)
    except StatusMapError as exc:
        return render_template("review/_status_map.html", **_context(raw, exc)), 422
    except NotConnected:
        return render_template("review/_status_map.html", **_context(raw)), 422
    except (cw_errors.ConnectWiseError, InvalidRecord):
        return render_template("review/_status_map.html", **_context(raw)), 422
    changed = status_map.save(session, tenant_id, picked, current_actor(), request_origin())
    message = "Status mapping saved." if changed else "Nothing changed."
    if wants_partial():
        return render_template("review/_status_map.html", **_context(saved=message))
    flash(message, "success")
    return redirect(url_for("review_settings.page"))
