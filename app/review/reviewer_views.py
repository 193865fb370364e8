"""Reviewer routes: an invoice's reviewers panel, adding and removing reviewers (manage_reviewers), the people picker.

Each change answers with the reviewers panel and, out of band, the timeline and decision panels it changed (a new
reviewer holds the approval chain; a removed one may complete it). Refusals answer 422 with the sentence beside
the form; an invoice that is not in review (or is another workspace's) is a 404. Without htmx a change redirects
to the invoice's review page.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.audit.web import current_actor, request_origin
from app.auth.roles import can, permission_page
from app.review import decisions, reviewers, timeline
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.views.htmx import wants_partial

bp = Blueprint("review_reviewers", __name__, url_prefix="/review")


def _tenant_id() -> uuid.UUID:
    return uuid.UUID(str(required_tenant_id()))


def _invoice_in_review(invoice_id: int) -> None:
    if reviewers.in_review(db_session(), invoice_id) is None:
        abort(404)


def _page_url(invoice_id: int) -> str:
    if "review_invoice.page" in current_app.view_functions:
        return url_for("review_invoice.page", invoice_id=invoice_id)
    return f"/review/{invoice_id}"


def _panel_html(invoice_id: int, error: str | None = None, notice: str | None = None) -> str:
    panel = reviewers.panel(db_session(), current_services(), _tenant_id(), invoice_id, current_user)
    panel.update(error=error, notice=notice)
    return render_template("review/_reviewers.html", reviewers_panel=panel)


def _oob(html: str, root_id: str) -> str:
    """A panel partial marked to swap out of band into its element ("" when it has no such root): left unmarked it
    would land inside this panel's swap."""
    marker = f'id="{root_id}"'
    at = html.find(marker)
    if at < 0:
        return ""
    if "hx-swap-oob" in html[html.rfind("<", 0, at):html.find(">", at)]:
        return html
    return html[:at + len(marker)] + ' hx-swap-oob="true"' + html[at + len(marker):]


def _changed(invoice_id: int, notice: str) -> Response | str:
    """After a change: the review state the reviewers now make (a removed reviewer may complete the approval
    chain, a new one reopens it), then the panel and, out of band, the timeline and the decision."""
    session, services, tenant_id = db_session(), current_services(), _tenant_id()
    decisions.recompute(session, services, tenant_id, invoice_id, current_user)
    if not wants_partial():
        flash(notice, "success")
        return redirect(_page_url(invoice_id))
    others = [_oob(render_template("review/_timeline.html", oob=True, timeline_panel=timeline.panel(
                  session, services, tenant_id, invoice_id, current_user)), "review-timeline"),
              _oob(render_template("review/_decision.html", oob=True, decision_panel=decisions.panel(
                  session, services, tenant_id, invoice_id, current_user)), "review-decision")]
    return _panel_html(invoice_id, notice=notice) + "".join(others)


def _refused(invoice_id: int, message: str) -> Response | tuple[str, int]:
    if not wants_partial():
        flash(message, "error")
        return redirect(_page_url(invoice_id))
    return _panel_html(invoice_id, error=message), 422


@bp.get("/<int:invoice_id>/reviewers")
@permission_page("view")
def panel(invoice_id: int) -> str:
    _invoice_in_review(invoice_id)
    return _panel_html(invoice_id)


@bp.get("/<int:invoice_id>/reviewers/candidates")
@permission_page("manage_reviewers")
def candidates(invoice_id: int) -> str:
    """The picker's options for what has been typed (htmx swaps them into the select)."""
    _invoice_in_review(invoice_id)
    found = reviewers.candidates(db_session(), invoice_id, request.args.get("q", ""))
    cannot_decide = {c.key for c in found if c.role is not None and not can(c.role, "review_decide")}
    return render_template("review/_reviewer_options.html", candidates=found, cannot_decide=cannot_decide,
                           query=request.args.get("q", ""))


@bp.post("/<int:invoice_id>/reviewers")
@permission_page("manage_reviewers")
def add(invoice_id: int) -> Response | str | tuple[str, int]:
    _invoice_in_review(invoice_id)
    try:
        row = reviewers.add(db_session(), current_services().keyring, _tenant_id(), invoice_id,
                            request.form.get("who", ""), by=current_user, actor=current_actor(),
                            origin=request_origin())
    except reviewers.ReviewerError as exc:
        return _refused(invoice_id, str(exc))
    return _changed(invoice_id, f"{row.name} added as reviewer.")


@bp.post("/<int:invoice_id>/reviewers/<uuid:reviewer_id>/remove")
@permission_page("manage_reviewers")
def remove(invoice_id: int, reviewer_id: uuid.UUID) -> Response | str | tuple[str, int]:
    _invoice_in_review(invoice_id)
    try:
        name = reviewers.remove(db_session(), current_services().keyring, _tenant_id(), invoice_id,
                                reviewer_id, by=current_user, actor=current_actor(), origin=request_origin())
    except reviewers.ReviewerError as exc:
        return _refused(invoice_id, str(exc))
    return _changed(invoice_id, f"Removed {name}.")
