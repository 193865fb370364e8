"""Decision routes: approve, undo, reject, close, change status, retry a write-back, and bulk approve.

An action answers htmx with the decision panel (``review/_decision.html``) and, out of band, the reviewers and the
timeline it changed; without htmx it redirects back to the invoice's review page. A refusal (a reason missing,
already approved, the review closed) is 422 with the panel saying why; an invoice not in review is 404.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.billing.limits import review_limit
from app.billing.state import billing_state
from app.connectwise import errors as cw_errors
from app.connectwise.records import InvalidRecord
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.review import bulk, decisions, plan_limits, reviewers, status_map, timeline, writeback
from app.review.decisions import DecisionError, Done
from app.review.writeback import WriteBackError
from app.services import current_services
from app.tenancy import current_tenant_id, db_session, required_tenant_id
from app.views.htmx import wants_partial

bp = Blueprint("review_decisions", __name__, url_prefix="/review")


@bp.before_request
def _within_plan() -> None:
    """Decisions on an invoice beyond the plan's review limit are refused: it is read-only."""
    if request.method != "POST" or not getattr(current_user, "is_authenticated", False) or not current_tenant_id():
        return  # the route's own checks answer first (sign-in, permission, tenant)
    session = db_session()
    bulk_ids = (request.form.getlist(n) for n in ("invoice_id", "approve_id", "confirm_id"))
    ids = plan_limits.posted_invoice_ids(request.view_args, bulk_ids)
    try:
        plan_limits.check_reviewable(session, ids, review_limit(billing_state(session)))
    except plan_limits.BeyondLimit as exc:
        abort(409, description=str(exc))


def _page(invoice_id: int) -> str:
    return f"{url_for('review.index')}{int(invoice_id)}"


def _oob(html: str, root_id: str) -> str:
    """``html`` (a panel partial) marked to swap out of band into its element; "" when it has no such root."""
    marker = f'id="{root_id}"'
    at = html.find(marker)
    if at < 0:
        return ""
    tag = html[html.rfind("<", 0, at):html.find(">", at)]
    if "hx-swap-oob" in tag:
        return html
    return html[:at + len(marker)] + ' hx-swap-oob="true"' + html[at + len(marker):]


def _panels(invoice_id: int, *, others: bool = True, **decision: Any) -> str:
    """The decision panel, plus (``others``) the reviewers and timeline panels out of band."""
    session, services, tenant_id = db_session(), current_services(), uuid.UUID(required_tenant_id())
    html = render_template("review/_decision.html", decision_panel=decisions.panel(
        session, services, tenant_id, invoice_id, current_user, **decision))
    if others:
        html += _oob(render_template("review/_reviewers.html", oob=True, reviewers_panel=reviewers.panel(
            session, services, tenant_id, invoice_id, current_user)), "review-reviewers")
        html += _oob(render_template("review/_timeline.html", oob=True, timeline_panel=timeline.panel(
            session, services, tenant_id, invoice_id, current_user)), "review-timeline")
    return html


def _answer(invoice_id: int, done: Done) -> Any:
    if wants_partial():
        return _panels(invoice_id, message=done.message)
    flash(done.message, "success")
    return redirect(_page(invoice_id))


def _refused(invoice_id: int, exc: DecisionError, reason: str = "") -> Any:
    if exc.status == 404:
        abort(404)
    db_session().rollback()  # nothing of a refused decision is kept
    if wants_partial():
        return _panels(invoice_id, others=False, error=exc, reason=reason), 422
    flash(exc.message, "error")
    return redirect(_page(invoice_id))


def _decide(invoice_id: int, action: Any, **options: Any) -> Any:
    session, services = db_session(), current_services()
    try:
        done = action(session, services, uuid.UUID(required_tenant_id()), invoice_id, current_user, current_actor(),
                      request_origin(), **options)
    except DecisionError as exc:
        return _refused(invoice_id, exc, options.get("reason") or "")
    if done.gated:
        # Nothing changed: the soft gate asks first, listing the open error and warning flags.
        if wants_partial():
            return _panels(invoice_id, others=False, gate=done.gate)
        flash(f"{len(done.gate)} open error or warning flags: confirm on the page to approve anyway.", "warning")
        return redirect(_page(invoice_id))
    return _answer(invoice_id, done)


@bp.get("/<int:invoice_id>/decision")
@permission_page("view")
def decision(invoice_id: int):
    """The panel alone (polled while a write-back is under way; once it is over, the timeline comes with it)."""
    panel = decisions.panel(db_session(), current_services(), uuid.UUID(required_tenant_id()), invoice_id,
                            current_user)
    if not panel["exists"]:
        abort(404)
    if not wants_partial():
        return redirect(_page(invoice_id))
    finished = request.args.get("polled") == "1" and not (panel["writeback"] or {}).get("polling")
    return _panels(invoice_id, others=finished)


@bp.post("/<int:invoice_id>/approve")
@permission_page("review_decide")
def approve(invoice_id: int):
    return _decide(invoice_id, decisions.approve, confirmed=request.form.get("confirm") == "1")


@bp.post("/<int:invoice_id>/undo")
@permission_page("review_decide")
def undo(invoice_id: int):
    return _decide(invoice_id, decisions.undo)


@bp.post("/<int:invoice_id>/reject")
@permission_page("review_decide")
def reject(invoice_id: int):
    return _decide(invoice_id, decisions.reject, reason=request.form.get("reason", ""))


@bp.post("/<int:invoice_id>/close")
@permission_page("review_decide")
def close(invoice_id: int):
    return _decide(invoice_id, decisions.close, reason=request.form.get("reason", ""))


def _catalog() -> tuple[list[status_map.Status] | None, str | None]:
    """The tenant's billing statuses (kept, or read now), or why they could not be read."""
    session, services, tenant_id = db_session(), current_services(), required_tenant_id()
    try:
        return status_map.load_catalog(session, services.redis, tenant_id, lambda: tenant_client(
            session, services.keyring, services.config, services.redis)), None
    except NotConnected:
        return None, "ConnectWise is not connected."
    except cw_errors.Busy:
        raise  # the app's 503 "ConnectWise is busy" with Retry-After
    except (cw_errors.ConnectWiseError, InvalidRecord) as exc:
        return None, f"Could not read your billing statuses from ConnectWise: {exc}"


@bp.get("/<int:invoice_id>/status")
@permission_page("review_decide")
def status_picker(invoice_id: int):
    """The "Change status" form with the tenant's billing statuses (loaded when the person opens it)."""
    try:
        invoice = decisions.review_of(db_session(), invoice_id)
    except DecisionError:
        abort(404)
    statuses, problem = _catalog()
    return render_template("review/_status_picker.html", invoice_id=invoice_id, statuses=statuses, problem=problem,
                           current=invoice.status_id, error=None)


@bp.post("/<int:invoice_id>/status")
@permission_page("review_decide")
def change_status(invoice_id: int):
    raw = request.form.get("status_id", "").strip()
    statuses, problem = _catalog()
    if statuses is None:
        return _refused(invoice_id, DecisionError(problem or "Could not read the billing statuses.", 422, "status_id"))
    picked = next((s for s in statuses if raw.isdigit() and s.id == int(raw)), None)
    if picked is None:
        return _refused(invoice_id, DecisionError("Pick one of your ConnectWise billing statuses.", 422,
                                                  "status_id"))
    return _decide(invoice_id, decisions.change_status, status=picked)


def _writeback_action(invoice_id: int, writeback_id: str, action: Any, message: str, *, with_redis: bool = False
                      ) -> Any:
    try:
        wid = uuid.UUID(writeback_id)
    except ValueError:
        abort(404)
    session, services, tenant_id = db_session(), current_services(), required_tenant_id()
    try:
        decisions.review_of(session, invoice_id)
        args = (session, services.redis) if with_redis else (session,)
        action(*args, tenant_id, invoice_id, wid, current_actor(), request_origin())
    except DecisionError:
        abort(404)
    except WriteBackError as exc:
        return _refused(invoice_id, DecisionError(str(exc)))
    return _answer(invoice_id, Done(message, ""))


@bp.post("/<int:invoice_id>/writeback/<writeback_id>/retry")
@permission_page("review_decide")
def retry_writeback(invoice_id: int, writeback_id: str):
    return _writeback_action(invoice_id, writeback_id, writeback.retry, "Trying the write-back again.",
                             with_redis=True)


@bp.post("/<int:invoice_id>/writeback/<writeback_id>/apply")
@permission_page("review_decide")
def apply_writeback(invoice_id: int, writeback_id: str):
    return _writeback_action(invoice_id, writeback_id, writeback.apply_anyway,
                             "Writing your status over the one set in ConnectWise.", with_redis=True)


@bp.post("/<int:invoice_id>/writeback/<writeback_id>/keep")
@permission_page("review_decide")
def keep_writeback(invoice_id: int, writeback_id: str):
    return _writeback_action(invoice_id, writeback_id, writeback.keep_theirs,
                             "Kept the status set in ConnectWise.")


# --- bulk approve -----------------------------------------------------------------------------------------------

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def _posted_ids(name: str) -> list[int]:
    return [int(v) for v in request.form.getlist(name) if v.strip().isdigit()]


def _bulk_answer(context: dict[str, Any], status: int = 200) -> Any:
    if wants_partial():
        # The panel replaces itself whatever swap the button asked for (the inbox's default is innerHTML).
        return render_template("review/_bulk.html", bulk=context), status, {"HX-Reswap": "outerHTML"}
    if status >= 400:
        flash(context.get("error") or "Nothing was approved.", "error")
    return redirect(url_for("review.index"))


@bp.post("/bulk/preview")
@permission_page("review_decide")
def bulk_preview():
    """What approving the selected invoices would do, before anything is done."""
    ids = _posted_ids("invoice_id")
    try:
        plan = bulk.preview(db_session(), ids, current_user, only_unflagged=request.form.get("only_unflagged") == "1")
    except bulk.BulkError as exc:
        return _bulk_answer({"kind": "error", "error": str(exc)}, 422)
    return _bulk_answer({"kind": "preview", "plan": plan})


@bp.post("/bulk")
@permission_page("review_decide")
def bulk_start():
    """Approve the selected invoices in a job; flagged ones only where confirmed one by one."""
    services = current_services()
    try:
        run_id = bulk.start(services.redis, required_tenant_id(), current_user.id, _posted_ids("approve_id"),
                            _posted_ids("confirm_id"), request_origin())
    except bulk.BulkError as exc:
        return _bulk_answer({"kind": "error", "error": str(exc)}, 422)
    return _bulk_answer({"kind": "progress", "run": bulk.progress(db_session(), services.redis,
                                                                  required_tenant_id(), run_id)})


@bp.get("/bulk/<run_id>")
@permission_page("review_decide")
def bulk_progress(run_id: str):
    if not _RUN_ID.match(run_id):
        abort(404)
    run = bulk.progress(db_session(), current_services().redis, required_tenant_id(), run_id)
    if run is None:
        abort(404)
    return _bulk_answer({"kind": "progress", "run": run})


@bp.get("/bulk/clear")
@permission_page("view")
def bulk_clear():
    """The empty bulk panel (Cancel)."""
    return _bulk_answer({})
