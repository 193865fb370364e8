"""Review pages: the inbox (``/review/``: tabs with counts, search, filters, sorting, paging; an htmx request gets
the list alone, ``review/_inbox.html``), and "Sweep now" with its progress panel, polled by htmx until the sweep job
has finished (the finished panel then tells the inbox to refresh itself)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, make_response, render_template, request, url_for

from app.audit.web import current_user_row_id
from app.auth.roles import permission_page
from app.billing.limits import review_limit
from app.billing.notices import plan_notice
from app.billing.state import billing_state
from app.connectwise.connection import get_connection
from app.review import inbox, plan_limits, progress
from app.review.failures import last_sweep_failures
from app.review.flags import SEVERITIES
from app.review.jobs import request_sweep, sweep_status
from app.review.settings import settings_of
from app.review.times import zone
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.tenants.models import TenantSettings
from app.views.htmx import wants_partial

bp = Blueprint("review", __name__, url_prefix="/review")
SWEPT_EVENT = "review-swept"  # the inbox listens for it and reloads its list
BULK_ENDPOINT = "review_decisions.bulk_preview"


def _panel() -> progress.Panel:
    redis, tenant_id = current_services().redis, str(required_tenant_id())
    return progress.panel(db_session(), redis, tenant_id, sweep_status(redis, tenant_id))


def _state() -> dict:
    """Why the page may have nothing to show: not connected, review storage off."""
    session = db_session()
    return {"connected": get_connection(session) is not None,
            "storage": settings_of(session, required_tenant_id()).storage_enabled}


def _has_route(endpoint: str) -> bool:
    """Whether another part's route exists yet (the bulk approve buttons appear once it does)."""
    return endpoint in current_app.view_functions


def _row_url() -> Callable[[int], str]:
    """How a row links to its invoice's review page (the page's own route once it exists)."""
    if _has_route("review_invoice.page"):
        return lambda invoice_id: url_for("review_invoice.page", invoice_id=invoice_id)
    return lambda invoice_id: f"/review/{invoice_id}"


@bp.get("/")
@permission_page("view")
def index():
    session, state, services = db_session(), _state(), current_services()
    query = inbox.InboxQuery.from_args(request.args)
    context: dict[str, Any] = {**state, "query": query, "result": None, "panel": None, "first_sweep": False,
                               "tabs": inbox.TABS, "sorts": inbox.SORTS, "row_url": _row_url(),
                               "bulk": _has_route(BULK_ENDPOINT), "read_only": set()}
    if state["connected"] and state["storage"]:
        settings = session.get(TenantSettings, required_tenant_id())
        result = inbox.load(session, services.redis, services.keyring, query, current_user_row_id(),
                            tz=zone(settings.timezone if settings is not None else None))
        context["result"], context["query"] = result, result.query
        # Rows beyond the plan's review limit: shown, flags and decisions kept, but not selectable.
        context["read_only"] = plan_limits.read_only_ids(session, (r.invoice_id for r in result.rows),
                                                         review_limit(billing_state(session)))
        if result.empty_everywhere and not query.filtered:
            context["panel"] = _panel()
            context["first_sweep"] = context["panel"].last is None
    if wants_partial():
        response = make_response(render_template("review/_inbox.html", **context))
        if request.headers.get("HX-Trigger") != "inbox":  # the list reloading itself is not a new place
            shown = context["query"]
            response.headers["HX-Push-Url"] = url_for("review.index", **shown.args(page=shown.page))
        return response
    if state["connected"]:
        context["panel"] = context["panel"] or _panel()
    if state["connected"] and state["storage"]:
        context.update(options=inbox.options(session), severities=SEVERITIES,
                       last_failures=last_sweep_failures(session))
    billing = billing_state(session)
    context.update(plan_notice=plan_notice(billing), plan_name=billing.plan.name,
                   review_usage=plan_limits.usage(session, review_limit(billing)))
    return render_template("review/page.html", **context)


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
    panel = _panel()
    response = make_response(render_template("review/_progress.html", panel=panel, **_state()))
    if not panel.polling and request.headers.get("HX-Request"):
        # The poll that sees the sweep finished: the inbox reloads its list once the panel has settled.
        response.headers["HX-Trigger-After-Settle"] = SWEPT_EVENT
    return response
