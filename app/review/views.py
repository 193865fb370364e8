"""Review pages: the overview (last sweep, open invoices, open flags by severity and their list) and "Sweep now" with
its progress panel, polled by htmx until the sweep job has finished."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from app.auth.roles import permission_page
from app.connectwise.connection import get_connection
from app.review import progress
from app.review.failures import last_sweep_failures
from app.review.flags import SEVERITIES, open_flags
from app.review.jobs import request_sweep, sweep_status
from app.review.models import Flag
from app.review.settings import settings_of
from app.services import current_services
from app.tenancy import db_session, required_tenant_id

bp = Blueprint("review", __name__, url_prefix="/review")
LISTED = 300  # flags listed on the page; the CLI prints them all


def _panel() -> progress.Panel:
    redis, tenant_id = current_services().redis, str(required_tenant_id())
    return progress.panel(db_session(), redis, tenant_id, sweep_status(redis, tenant_id))


def _state() -> dict:
    """Why the page may have nothing to show: not connected, review storage off."""
    session = db_session()
    return {"connected": get_connection(session) is not None,
            "storage": settings_of(session, required_tenant_id()).storage_enabled}


@bp.get("/")
@permission_page("view")
def index():
    session, state = db_session(), _state()
    counts = dict(session.execute(select(Flag.severity, func.count()).where(Flag.cleared_at.is_(None))
                                  .group_by(Flag.severity)).tuples().all())
    flags = open_flags(session, current_services().keyring) if state["storage"] else []
    return render_template("review/page.html", panel=_panel(), **state, severities=SEVERITIES,
                           counts={s: counts.get(s, 0) for s in SEVERITIES}, flags=flags[:LISTED],
                           more=max(0, len(flags) - LISTED), last_failures=last_sweep_failures(session))


@bp.post("/sweep")
@permission_page("run_sweep")
def sweep_now():
    state = _state()
    if not state["connected"] or not state["storage"]:
        return render_template("review/_progress.html", panel=_panel(), **state), 422
    request_sweep(current_services(), str(required_tenant_id()))
    return render_template("review/_progress.html", panel=_panel(), **state)


@bp.get("/sweep/progress")
@permission_page("view")
def sweep_progress():
    return render_template("review/_progress.html", panel=_panel(), **_state())
