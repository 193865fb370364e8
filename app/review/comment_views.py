"""Comment routes: post a comment on an invoice's review (review_comment), the mention popup's people, and the
header's notifications (the count, the list, opening one, marking all read).

Posting answers htmx with a fresh comment box and, out of band, the timeline (and the reviewers and decision panels
when mentioned people became reviewers, the guest links when an address without an account was mentioned); a
refusal is 422 with the box keeping what was typed and saying why; an invoice not in review (or another
workspace's) is 404. Without htmx it redirects to the review page.

The two options are re-checked here whatever the form says: mentioned people become reviewers only with
``manage_reviewers`` and the box ticked, and are mailed only with ``send_emails`` and the box ticked.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.audit.web import current_actor, request_origin
from app.auth.roles import can, permission_page
from app.review import comments, decisions, guests, notifications, reviewers, timeline
from app.review.events import EventActor
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.views.htmx import wants_partial

bp = Blueprint("review_comments", __name__, url_prefix="/review")


def _tenant_id() -> uuid.UUID:
    return uuid.UUID(str(required_tenant_id()))


def _in_review(invoice_id: int) -> None:
    if reviewers.in_review(db_session(), invoice_id) is None:
        abort(404)


def _page_url(invoice_id: int) -> str:
    return f"{url_for('review.index')}{int(invoice_id)}"


def _oob(html: str, root_id: str) -> str:
    """A panel partial marked to swap out of band into its element ("" when it has no such root)."""
    marker = f'id="{root_id}"'
    at = html.find(marker)
    if at < 0:
        return ""
    if "hx-swap-oob" in html[html.rfind("<", 0, at):html.find(">", at)]:
        return html
    return html[:at + len(marker)] + ' hx-swap-oob="true"' + html[at + len(marker):]


def _box(invoice_id: int, **changes: Any) -> str:
    panel = comments.panel(db_session(), current_services(), _tenant_id(), invoice_id, current_user)
    panel.update(changes)
    return render_template("review/_comment_box.html", comment_panel=panel)


def _user_id() -> uuid.UUID | None:
    """The signed-in user's row id (support staff through a grant have none)."""
    if getattr(current_user, "audit_actor", None) is not None:
        return None
    value = getattr(current_user, "id", None)
    return value if isinstance(value, uuid.UUID) else None


@bp.get("/<int:invoice_id>/comments/people")
@permission_page("review_comment")
def people(invoice_id: int) -> Response:
    """The mention popup's choices for what follows the "@" (JSON for the script; filtered here, not there)."""
    _in_review(invoice_id)
    return jsonify(comments.people(db_session(), invoice_id, request.args.get("q", "")[:100]))


@bp.post("/<int:invoice_id>/comments")
@permission_page("review_comment")
def post(invoice_id: int) -> Response | str | tuple[str, int]:
    _in_review(invoice_id)
    session, services, tenant_id = db_session(), current_services(), _tenant_id()
    text = request.form.get("text", "")
    picks = request.form.getlist("mention")[:comments.MAX_MENTIONS + 1]
    add = can(current_user.role, "manage_reviewers") and request.form.get("add_reviewers") == "1"
    mail = can(current_user.role, "send_emails") and request.form.get("email_mentioned") == "1"
    try:
        done = comments.post(session, services, tenant_id, invoice_id, text, author=EventActor.for_user(current_user),
                             actor=current_actor(), origin=request_origin(), mentions=picks, add_reviewers=add,
                             email=mail, by=current_user)
    except comments.CommentError as exc:
        if not wants_partial():
            flash(str(exc), "error")
            return redirect(_page_url(invoice_id))
        return _box(invoice_id, error=str(exc), text=comments.clean_text(text)[:comments.MAX_TEXT + 100]), 422
    if done.reviewers_added:
        decisions.recompute(session, services, tenant_id, invoice_id, current_user)
    notice = _notice(done)
    if not wants_partial():
        flash(notice, "success")
        return redirect(_page_url(invoice_id))
    html = _box(invoice_id, notice=notice, guest_urls=[url for _, url in done.guest_links])
    html += _oob(render_template("review/_timeline.html", oob=True, timeline_panel=timeline.panel(
        session, services, tenant_id, invoice_id, current_user)), "review-timeline")
    if any(m.type == "email" for m in done.mentions):  # a guest link made now, or by the mail job shortly
        html += render_template("review/_guest_links.html", oob=True, guest_panel=guests.panel(
            session, services, tenant_id, invoice_id, current_user))
    if done.reviewers_added:
        html += _oob(render_template("review/_reviewers.html", oob=True, reviewers_panel=reviewers.panel(
            session, services, tenant_id, invoice_id, current_user)), "review-reviewers")
        html += _oob(render_template("review/_decision.html", oob=True, decision_panel=decisions.panel(
            session, services, tenant_id, invoice_id, current_user)), "review-decision")
    return html


def _notice(done: comments.Posted) -> str:
    parts = ["Comment posted."]
    if done.reviewers_added:
        parts.append(f"Added as reviewer{'s' if len(done.reviewers_added) != 1 else ''}: "
                     f"{', '.join(done.reviewers_added)}.")
    if done.emailed:
        parts.append(f"Emailing {', '.join(done.emailed)}.")
    if done.unreached:
        names = ", ".join(done.unreached)
        parts.append(f"{names} {'has' if len(done.unreached) == 1 else 'have'} no account here and we keep no "
                     "ConnectWise member's email address, so nobody told them: mention their email address to "
                     "give them a guest link.")
    return " ".join(parts)


# --- notifications ------------------------------------------------------------------------------------------------


@bp.app_context_processor
def _header() -> dict[str, Any]:
    return {"review_notifications": _header_state}


def _header_state() -> dict[str, Any] | None:
    """The header's notifications entry for the signed-in user (None: nobody to notify, e.g. support staff)."""
    if not current_user.is_authenticated or not can(current_user.role, "view"):
        return None
    user_id = _user_id()
    if user_id is None:
        return None
    return {"count": notifications.unread_count(db_session(), user_id), "url": url_for("review_comments.inbox")}


@bp.get("/notifications")
@permission_page("view")
def inbox() -> str:
    user_id = _user_id()
    found = notifications.items(db_session(), user_id, reviewers.tenant_zone(db_session(), _tenant_id())) \
        if user_id else []
    return render_template("review/notifications.html", items=found)


@bp.post("/notifications/<uuid:notification_id>/open")
@permission_page("view")
def open_one(notification_id: uuid.UUID) -> Response:
    user_id = _user_id()
    invoice_id = notifications.invoice_of(db_session(), user_id, notification_id) if user_id else None
    if user_id is None or invoice_id is None:
        abort(404)
    notifications.mark_read(db_session(), user_id, notification_id=notification_id)
    return redirect(_page_url(invoice_id))


@bp.post("/notifications/read")
@permission_page("view")
def read_all() -> Response:
    user_id = _user_id()
    if user_id is not None:
        notifications.mark_read(db_session(), user_id)
    return redirect(url_for("review_comments.inbox"))
