"""Inline edit routes on the review page (``app.review.edits`` does the work): a value's edit form, the value
again (Esc), save (Enter), and "Keep theirs" after a conflict.

Each answers htmx with the one cell (``review/_line_cell.html``, swapped over itself); a save that was written also
carries, out of band, the lines panel's totals, the document, the header's total, the flags pane and the timeline,
all from the rescanned snapshot. Our refusal of a value is 422 (the form again, the message beside the field); a
conflict or a ConnectWise refusal is 409, ConnectWise unreachable 502/503, each with the message beside the field.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.billing.limits import review_limit
from app.billing.state import billing_state
from app.branding import store as branding_store
from app.review import edits, invoice_page, plan_limits, timeline
from app.review.edits import Conflict, EditError, EditRefused, NotEditable
from app.review.invoice_views import _document_html, _flags_panel, _head, _zone
from app.services import current_services
from app.tenancy import current_tenant_id, db_session, required_tenant_id
from app.views.htmx import wants_partial

bp = Blueprint("review_edits", __name__, url_prefix="/review")
CELL = "/<int:invoice_id>/lines/<kind>/<int:record_id>/<name>"


@bp.before_request
def _within_plan() -> None:
    """An invoice beyond the plan's review limit is read-only: its editor does not open and nothing is saved."""
    if request.endpoint == "review_edits.show" or not getattr(current_user, "is_authenticated", False) \
            or not current_tenant_id():
        return  # the value itself stays visible; the route's own checks answer first (sign-in, permission)
    session = db_session()
    ids = plan_limits.posted_invoice_ids(request.view_args, ())
    try:
        plan_limits.check_reviewable(session, ids, review_limit(billing_state(session)))
    except plan_limits.BeyondLimit as exc:
        abort(409, description=str(exc))


def _tenant() -> uuid.UUID:
    return uuid.UUID(required_tenant_id())


def _stored(invoice_id: int) -> invoice_page.Stored:
    stored = invoice_page.load(db_session(), current_services().keyring, _tenant(), invoice_id)
    if stored is None:
        abort(404, description="This invoice is not in review.")
    return stored


def _cell(stored: invoice_page.Stored, kind: str, record_id: int, name: str) -> edits.Cell:
    try:
        return edits.cell(stored, kind, record_id, name)
    except NotEditable as exc:
        abort(exc.status, description=str(exc))


def _render_cell(invoice_id: int, c: edits.Cell, *, mode: str = "show", raw: str | None = None, error: str = "",
                 conflict: Conflict | None = None, notice: str = "", focus: bool = False) -> str:
    return render_template("review/_line_cell.html", invoice_id=invoice_id, c=c, mode=mode,
                           raw=c.typed if raw is None else raw, error=error, conflict=conflict, notice=notice,
                           focus=focus)


def _oob_after_write(invoice_id: int) -> str:
    """What a written edit changed elsewhere on the page, from the rescanned snapshot, swapped out of band."""
    session, services, tenant_id = db_session(), current_services(), _tenant()
    session.expire_all()
    stored = _stored(invoice_id)
    branding = branding_store.load(session, tenant_id)
    html = render_template("review/_lines_totals.html", lines_panel=edits.panel_of(stored, current_user), oob=True)
    document = _document_html(stored, branding)
    if document is not None:
        html += f'<div class="invoice-frame" id="review-document" hx-swap-oob="true">{document}</div>'
    html += render_template("review/_head_total.html", head=_head(stored))
    if stored.is_open:
        html += render_template("review/_flags_pane.html", flags_panel=_flags_panel(stored), oob=True)
    html += render_template("review/_timeline.html", oob=True, timeline_panel=timeline.panel(
        session, services, tenant_id, invoice_id, current_user))
    return html


def _back(invoice_id: int) -> Any:
    return redirect(url_for("review_invoice.page", invoice_id=invoice_id), code=303)


@bp.get(CELL)
@permission_page("view")
def show(invoice_id: int, kind: str, record_id: int, name: str):
    """The value as shown (Esc, or "Cancel")."""
    c = _cell(_stored(invoice_id), kind, record_id, name)
    if not wants_partial():
        return _back(invoice_id)
    return _render_cell(invoice_id, c, focus=True)


@bp.get(CELL + "/edit")
@permission_page("review_edit")
def edit(invoice_id: int, kind: str, record_id: int, name: str):
    """The value's input, in place of the value."""
    stored = _stored(invoice_id)
    if not stored.is_open:
        abort(409, description="This invoice is no longer open in ConnectWise, so it cannot be edited here.")
    c = _cell(stored, kind, record_id, name)
    if not wants_partial():
        return _back(invoice_id)
    return _render_cell(invoice_id, c, mode="edit")


@bp.post(CELL)
@permission_page("review_edit")
def save(invoice_id: int, kind: str, record_id: int, name: str):
    """Enter: validate, check for a change in ConnectWise, write back, rescan."""
    raw = request.form.get("value", "")
    stored = _stored(invoice_id)
    c = _cell(stored, kind, record_id, name)
    try:
        saved = edits.save(db_session(), current_services(), _tenant(), invoice_id, kind, record_id, name, raw,
                           current_user, current_actor(), request_origin(), _zone(),
                           accept_seen=request.form.get("accept_seen", "")[:40])
    except EditError as exc:
        db_session().rollback()  # nothing of a refused edit is kept
        status = 422 if isinstance(exc, EditRefused) else 404 if exc.status == 404 else (
            exc.status if exc.status in (502, 503) else 409)
        if status == 404:
            abort(404, description=str(exc))
        if not wants_partial():
            flash(str(exc), "error")
            return _back(invoice_id)
        return _render_cell(invoice_id, c, mode="edit", raw=raw, error=str(exc)), status
    if saved.state == "conflict":
        if not wants_partial():
            flash("ConnectWise changed this value meanwhile; nothing was written. Open the invoice to choose.", "warning")
            return _back(invoice_id)
        return _render_cell(invoice_id, c, mode="edit", raw=raw, conflict=saved.conflict), 409
    if not wants_partial():
        flash(saved.rescan_problem or "Saved in ConnectWise.", "warning" if saved.rescan_problem else "success")
        return _back(invoice_id)
    if saved.state == "unchanged":
        return _render_cell(invoice_id, c, focus=True)
    fresh = _cell(_stored_fresh(invoice_id), kind, record_id, name)
    return (_render_cell(invoice_id, fresh, notice=saved.rescan_problem or "Saved in ConnectWise.", focus=True)
            + _oob_after_write(invoice_id))


def _stored_fresh(invoice_id: int) -> invoice_page.Stored:
    db_session().expire_all()  # the rescan wrote the new snapshot in its own transaction
    return _stored(invoice_id)


@bp.post(CELL + "/keep")
@permission_page("review_edit")
def keep_theirs(invoice_id: int, kind: str, record_id: int, name: str):
    """"Keep theirs": nothing written; the invoice is read again so the value shown is ConnectWise's."""
    _cell(_stored(invoice_id), kind, record_id, name)
    db_session().commit()  # the rescan takes the tenant's locks in its own transaction
    problem = edits.keep_theirs(current_services(), _tenant(), invoice_id)
    if not wants_partial():
        flash(problem or "Kept the value in ConnectWise.", "warning" if problem else "success")
        return _back(invoice_id)
    fresh = _cell(_stored_fresh(invoice_id), kind, record_id, name)
    return (_render_cell(invoice_id, fresh, notice=problem or "Kept the value in ConnectWise.", focus=True)
            + _oob_after_write(invoice_id))

