"""The invoice's review page (/review/<invoice>): the branded invoice from its snapshot, the flags pane,
the panels of reviewers, decision and activity, the changed-in-ConnectWise banner and its refresh.

Opening the page reads only our tables (no ConnectWise call), marks the invoice read for the user and tells the
reviewers module that the user viewed it. Refresh is the one ConnectWise read, and only when a person asks.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.audit.web import current_actor, current_user_row_id, request_origin
from app.auth.roles import can, permission_page
from app.billing.limits import review_limit
from app.billing.state import billing_state
from app.branding import store as branding_store
from app.branding.store import StoredBranding
from app.invoices.document import format_money
from app.invoices.html import render_document_html
from app.review import comments, decisions, edits, guests, invoice_page, plan_limits, reads, reviewers, timeline
from app.review.settings import settings_of
from app.review.times import when, zone
from app.services import current_services
from app.tenancy import current_tenant_id, db_session, required_tenant_id
from app.tenants.models import TenantSettings
from app.views.htmx import wants_partial

bp = Blueprint("review_invoice", __name__, url_prefix="/review")


@bp.before_request
def _within_plan() -> None:
    """Marking a flag OK or reading again an invoice beyond the plan's review limit is refused: it is read-only."""
    if request.method != "POST" or not getattr(current_user, "is_authenticated", False) or not current_tenant_id():
        return  # the page itself stays visible; the route's own checks answer first (sign-in, permission)
    session = db_session()
    try:
        plan_limits.check_reviewable(session, plan_limits.posted_invoice_ids(request.view_args, ()),
                                     review_limit(billing_state(session)))
    except plan_limits.BeyondLimit as exc:
        abort(409, description=str(exc))
NOT_IN_REVIEW = "This invoice is not in review. Open invoices appear here after a sweep."


def _tenant() -> uuid.UUID:
    return uuid.UUID(required_tenant_id())


def _zone() -> Any:
    """The workspace's time zone, read once per request (the panels all ask)."""
    if "review_zone" not in g:
        name = db_session().execute(select(TenantSettings.timezone)).scalar_one_or_none()
        g.review_zone = zone(name)
    return g.review_zone


def _stored(invoice_id: int) -> invoice_page.Stored:
    stored = invoice_page.load(db_session(), current_services().keyring, _tenant(), invoice_id)
    if stored is None:
        abort(404, description=NOT_IN_REVIEW)
    return stored


def _flags_panel(stored: invoice_page.Stored) -> dict[str, Any]:
    return invoice_page.flags_pane(db_session(), current_services(), stored, _zone(),
                                   can_mark=can(current_user.role, "review_decide"),
                                   can_configure=can(current_user.role, "review_rules"))


def _banner(stored: invoice_page.Stored, error: str | None = None) -> dict[str, Any]:
    return invoice_page.banner(stored, _zone(), can_refresh=can(current_user.role, "run_sweep"), error=error)


def _timeline_panel(invoice_id: int) -> dict[str, Any]:
    return timeline.panel(db_session(), current_services(), _tenant(), invoice_id, current_user)


def _document_html(stored: invoice_page.Stored, branding: StoredBranding) -> Any:
    """The branded invoice, by the public page's renderer, from the snapshot (no ConnectWise)."""
    if stored.document is None:
        return None
    logo_url = (url_for("branding.logo", tenant_id=_tenant(), version=branding.version)
                if branding.has_logo else None)
    return render_document_html(stored.document, branding.branding, logo_url=logo_url, pdf_url=None)


def _head(stored: invoice_page.Stored) -> dict[str, Any]:
    row, doc = stored.row, stored.document
    total = format_money(doc.totals.total, doc.currency) if doc is not None else f"{row.total:,.2f} {row.currency}"
    return {"number": row.invoice_number, "company": row.company_name, "display_type": row.display_type,
            "status": row.status_name, "total": total, "title": doc.title if doc is not None else "Invoice",
            "left_when": when(row.left_open_at, _zone()) if row.left_open_at else ""}


@bp.get("/<int:invoice_id>")
@permission_page("view")
def page(invoice_id: int):
    session, services, tenant_id = db_session(), current_services(), _tenant()
    stored = _stored(invoice_id)
    user_row = current_user_row_id()
    if user_row is not None:  # support staff have no user row, and no "unread" of their own
        reads.mark_read(session, tenant_id, invoice_id, user_row)
    reviewers.mark_viewed(session, services, tenant_id, invoice_id, current_user)
    branding = branding_store.load(session, tenant_id)
    return render_template(
        "review/invoice.html", invoice_id=invoice_id, head=_head(stored), stored=stored,
        document=_document_html(stored, branding),
        brand_css_url=url_for("branding.brand_css", tenant_id=tenant_id, version=branding.version),
        flags_panel=_flags_panel(stored), banner=_banner(stored),
        reviewers_panel=reviewers.panel(session, services, tenant_id, invoice_id, current_user),
        decision_panel=decisions.panel(session, services, tenant_id, invoice_id, current_user),
        timeline_panel=_timeline_panel(invoice_id),
        lines_panel=edits.panel(session, services, tenant_id, invoice_id, current_user),
        comment_panel=comments.panel(session, services, tenant_id, invoice_id, current_user),
        guest_panel=guests.panel(session, services, tenant_id, invoice_id, current_user),
        read_only=_read_only(session, invoice_id))


def _read_only(session: Any, invoice_id: int) -> str:
    """Why the invoice is read-only (beyond the plan's review limit), or ""."""
    limit = review_limit(billing_state(session))
    return "" if plan_limits.is_reviewable(session, invoice_id, limit) else plan_limits.READ_ONLY.format(limit=limit)


@bp.post("/<int:invoice_id>/flags/<uuid:flag_id>/ok")
@permission_page("review_decide")
def mark_flag_ok(invoice_id: int, flag_id: uuid.UUID):
    """The Mark as OK checkbox: checked posts ok=1, unchecked posts nothing (so the request says the state wanted,
    and a double submit cannot flip it back)."""
    session = db_session()
    stored = _stored(invoice_id)
    wanted = request.form.get("ok") in ("1", "on", "true")
    changed = invoice_page.set_flag_ok(session, current_services().keyring, _tenant(), invoice_id, flag_id, wanted,
                                       current_user, current_actor(), current_user_row_id(), request_origin())
    if changed is None:
        abort(404, description="That flag is no longer open on this invoice. Reload the page to see its flags.")
    if not wants_partial():
        return redirect(url_for(".page", invoice_id=invoice_id), code=303)
    # The pane swaps in place; the timeline, which gained an entry, rides along out of band.
    return (render_template("review/_flags_pane.html", flags_panel=_flags_panel(stored))
            + render_template("review/_timeline.html", timeline_panel=_timeline_panel(invoice_id), oob=True))


@bp.post("/<int:invoice_id>/refresh")
@permission_page("run_sweep")
def refresh(invoice_id: int):
    """Rescan this invoice from ConnectWise now. Done: the page reloads with what was read. Failed: the banner
    says why and nothing stored has changed."""
    stored = _stored(invoice_id)
    if not settings_of(db_session(), _tenant()).storage_enabled:
        return _refresh_failed(stored, "Review storage is turned off for this workspace; nothing was read.")
    # The rescan commits in its own transaction; what this request has open must not hold the tenant's locks.
    db_session().commit()
    outcome = invoice_page.refresh(current_services(), str(_tenant()), invoice_id)
    if not outcome.ok:
        db_session().expire_all()
        return _refresh_failed(_stored(invoice_id), outcome.reason or "The invoice could not be refreshed.")
    if not outcome.still_open:
        flash("ConnectWise no longer has this invoice open (sent or closed): it has left review.", "warning")
    else:
        flash(_refreshed_message(outcome), "success")
    target = url_for(".page", invoice_id=invoice_id)
    if wants_partial():
        return "", 200, {"HX-Redirect": target}
    return redirect(target, code=303)


def _refreshed_message(outcome: invoice_page.Refreshed) -> str:
    if not outcome.changed:
        return "Refreshed from ConnectWise: nothing had changed."
    flags = []
    if outcome.flags_raised:
        flags.append(f"{outcome.flags_raised} new flag{'s' if outcome.flags_raised != 1 else ''}")
    if outcome.flags_cleared:
        flags.append(f"{outcome.flags_cleared} cleared")
    return "Refreshed from ConnectWise: the invoice changed" + (f" ({', '.join(flags)})." if flags else ".")


def _refresh_failed(stored: invoice_page.Stored, reason: str):
    if wants_partial():
        return render_template("review/_banner.html", banner=_banner(stored, error=reason))
    flash(f"The invoice could not be refreshed. {reason}", "error")
    return redirect(url_for(".page", invoice_id=stored.row.invoice_id), code=303)
