"""Guest reviewer pages (``/g/``: open a link, the review, its PDF, comment, approve, reject) and the staff side on
the invoice's review page (invite a guest, revoke a link). The design is in ``app.review.guests``' docstring.

The guest pages never use Flask-Login: the request's guest is read from the guest session (``g.guest``) before
each view, and the link is checked again each time, so revocation and expiry take effect at the next request.
Anything missing (no guest session, a timed-out one, a revoked or expired link) answers the one "link not valid"
page, 404, the same for an unknown token.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_login import current_user

from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.branding import store as branding_store
from app.invoices.html import branding_css, render_document_html
from app.invoices.pdf import render_pdf
from app.invoices.pdf_jobs import pdf_filename
from app.invoices.templating import page_size_for
from app.review import comments, decisions, guests, invoice_page, reviewers, timeline
from app.review.comments import CommentError
from app.review.decisions import DecisionError
from app.review.guests import Guest, GuestError
from app.review.times import zone
from app.security.limits import PUBLIC_LINK_PER_IP, PUBLIC_LINK_PER_TOKEN, client_ip, hashed, limiter, view_arg_key
from app.services import current_services
from app.tenancy import db_session, required_tenant_id, set_tenant
from app.tenants.models import TenantSettings
from app.views.htmx import wants_partial

bp = Blueprint("review_guest", __name__, url_prefix="/g")
# The staff side has no prefix: its routes sit under /review/<invoice>/ and the link lifetime under /settings/review/.
staff_bp = Blueprint("review_guests", __name__)

GUEST_HEADERS = {"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer",
                 "Cache-Control": "private, no-store"}
COMMENT_MAX = comments.MAX_TEXT
_SESSION_KEY = "guest"
# The IP limit is shared by every guest endpoint; the token limit counts openings of one link, the link limit the
# requests of a guest session (the token is no longer in the address then).
per_ip = limiter.shared_limit(PUBLIC_LINK_PER_IP, scope="guest-link-ip", key_func=client_ip)
per_token = limiter.shared_limit(PUBLIC_LINK_PER_TOKEN, scope="guest-link-token", key_func=view_arg_key("token"))


def _link_key() -> str:
    held = session.get(_SESSION_KEY) or {}
    return "guest:" + hashed(str(held.get("l") or client_ip()))


per_link = limiter.shared_limit(PUBLIC_LINK_PER_TOKEN, scope="guest-link-session", key_func=_link_key)


class _Stop(Exception):
    def __init__(self, response: Response):
        self.response = response


@bp.errorhandler(_Stop)
def _stopped(stop: _Stop) -> Response:
    return stop.response


@bp.after_request
def _private(response: Response) -> Response:
    """Every answer under /g/ stays out of search engines, referrers and shared caches."""
    for name, value in GUEST_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def not_valid() -> Response:
    """The one page for unknown, revoked, expired and timed-out links: same status, same words."""
    return current_app.make_response((render_template("review/guest_not_valid.html"), 404))


def _guest() -> Guest:
    """The request's guest (set before the view), or the "link not valid" page."""
    guest = g.get("guest")
    if guest is None:
        raise _Stop(not_valid())
    return guest


@bp.before_request
def _load_guest() -> None:
    """The guest of this guest session, if its link still works; the request's tenant becomes the link's."""
    g.guest = None
    if request.endpoint in (f"{bp.name}.open_link", "static"):
        return
    held = session.get(_SESSION_KEY)
    if not isinstance(held, dict):
        return
    try:
        tenant_id, link_id = uuid.UUID(str(held.get("t"))), uuid.UUID(str(held.get("l")))
    except ValueError:
        return
    set_tenant(tenant_id)
    guest = guests.active(db_session(), current_services().keyring, link_id)
    if guest is None:
        session.destroy()  # type: ignore[attr-defined]
        set_tenant(None)
        return
    g.guest = guest


# --- the guest's pages ----------------------------------------------------------------------------------------------

@bp.get("/<token>")
@per_ip
@per_token
def open_link(token: str) -> Any:
    """Open an emailed or copied link: a fresh guest session for its link, then the review (token out of the URL)."""
    found = guests.lookup(db_session(), token)
    if found is None:
        return not_valid()
    tenant_id, link_id = found
    set_tenant(tenant_id)
    guest = guests.active(db_session(), current_services().keyring, link_id)
    if guest is None:
        return not_valid()
    session.clear()
    session.rotate()  # type: ignore[attr-defined]
    session[_SESSION_KEY] = {"t": str(tenant_id), "l": str(link_id)}
    return redirect(url_for(".page"), code=303)


def _zone(tenant_id: uuid.UUID) -> Any:
    if "guest_zone" not in g:
        name = db_session().get(TenantSettings, tenant_id)
        g.guest_zone = zone(name.timezone if name is not None else None)
    return g.guest_zone


def _stored(guest: Guest) -> invoice_page.Stored:
    stored = invoice_page.load(db_session(), current_services().keyring, guest.tenant_id, guest.invoice_id)
    if stored is None:
        raise _Stop(not_valid())
    return stored


def _flags_panel(guest: Guest, stored: invoice_page.Stored) -> dict[str, Any]:
    """The flags without the gear, Mark as OK or ConnectWise links (a guest has no ConnectWise sign-in)."""
    pane = invoice_page.flags_pane(db_session(), current_services(), stored, _zone(guest.tenant_id),
                                   can_mark=False, can_configure=False)
    pane["flags"] = [dataclasses.replace(f, deeplink=None) for f in pane["flags"]]
    return pane


def _decision_panel(guest: Guest, *, error: DecisionError | None = None, message: str | None = None,
                    gate: list[decisions.GateFlag] | None = None, reason: str = "") -> dict[str, Any]:
    """The decision panel as a guest sees it: the state, and approve/reject only while assigned."""
    session, services = db_session(), current_services()
    panel = decisions.panel(session, services, guest.tenant_id, guest.invoice_id, guest, gate=gate, error=error,
                            message=message, reason=reason)
    mine = guests.assigned(session, guest)
    panel["assigned"] = mine is not None
    panel["my_state"] = mine.state if mine is not None else None
    open_review = panel.get("exists") and panel.get("state") != "closed" and panel.get("is_open")
    panel["actions"] = [a for a, ok in (("approve", mine is not None and mine.state != "approved"),
                                        ("reject", mine is not None and mine.state != "rejected"))
                        if ok and open_review]
    return panel


def _timeline_panel(guest: Guest) -> dict[str, Any]:
    return timeline.panel(db_session(), current_services(), guest.tenant_id, guest.invoice_id, guest)


def _reviewers_panel(guest: Guest) -> dict[str, Any]:
    return reviewers.panel(db_session(), current_services(), guest.tenant_id, guest.invoice_id, guest)


@bp.get("/review")
@per_ip
@per_link
def page() -> Any:
    guest = _guest()
    stored = _stored(guest)
    branding = branding_store.load(db_session(), guest.tenant_id)
    document = None
    if stored.document is not None:
        logo_url = url_for(".logo", v=branding.version) if branding.has_logo else None
        document = render_document_html(stored.document, branding.branding, logo_url=logo_url,
                                        pdf_url=url_for(".pdf"))
    doc = stored.document
    head = {"number": stored.row.invoice_number, "company": stored.row.company_name,
            "title": doc.title if doc is not None else "Invoice"}
    return render_template(
        "review/guest.html", guest=guest, head=head, stored=stored, document=document,
        brand_css_url=url_for(".brand_css", v=branding.version), flags_panel=_flags_panel(guest, stored),
        reviewers_panel=_reviewers_panel(guest), decision_panel=_decision_panel(guest),
        timeline_panel=_timeline_panel(guest), comment={"text": "", "error": None})


@bp.get("/review/pdf")
@per_ip
@per_link
def pdf() -> Any:
    """The invoice's PDF from the snapshot the guest is looking at, by the invoices' renderer, in the request (as a
    public link's PDF is: one invoice, bounded by the rate limits)."""
    guest = _guest()
    stored = _stored(guest)
    if stored.document is None:
        raise _Stop(not_valid())
    branding = branding_store.load(db_session(), guest.tenant_id)
    size = page_size_for(stored.document, branding.page_size_choice)
    data = render_pdf(stored.document, branding.branding, logo=branding.logo, page_size=size)
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=pdf_filename(stored.document.number, guest.invoice_id), max_age=0)


@bp.get("/brand.css")
@per_ip
def brand_css() -> Any:
    guest = _guest()
    response = Response(branding_css(branding_store.load(db_session(), guest.tenant_id).branding),
                        mimetype="text/css")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.get("/logo")
@per_ip
def logo() -> Any:
    guest = _guest()
    branding = branding_store.load(db_session(), guest.tenant_id)
    if not branding.has_logo:
        return not_valid()
    response = Response(branding.logo, mimetype=branding.logo_mime or "application/octet-stream")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


def _post_comment(guest: Guest, text: str) -> None:
    """The guest's comment, by ``comments.post`` like anyone's (a "commented" event by the guest, an audit row
    without the text), with no mention powers: ``post`` reads no mention from a guest's text (why: its docstring)."""
    comments.post(db_session(), current_services(), guest.tenant_id, guest.invoice_id, text,
                  author=guest.event_actor, actor=guest.audit_actor, origin=request_origin(), mentions=(),
                  add_reviewers=False, email=False, by=None)


def _after_action(guest: Guest, partial: str, **context: Any) -> Any:
    """htmx: ``partial`` plus the reviewers and timeline out of band; otherwise back to the page."""
    if not wants_partial():
        return redirect(url_for(".page"), code=303)
    return (render_template(partial, guest=guest, **context)
            + render_template("review/_reviewers.html", reviewers_panel=_reviewers_panel(guest), oob=True)
            + render_template("review/_timeline.html", timeline_panel=_timeline_panel(guest), oob=True))


@bp.post("/review/comment")
@per_ip
@per_link
def comment() -> Any:
    guest = _guest()
    _stored(guest)
    text = request.form.get("text") or ""
    try:
        _post_comment(guest, text)
    except CommentError as exc:
        db_session().rollback()
        if wants_partial():
            return render_template("review/_guest_comment.html", guest=guest,
                                   comment={"text": comments.clean_text(text)[:COMMENT_MAX + 100],
                                            "error": str(exc)}), 422
        return redirect(url_for(".page"), code=303)
    return _after_action(guest, "review/_guest_comment.html", comment={"text": "", "error": None})


def _decide(action: Any, **options: Any) -> Any:
    guest = _guest()
    _stored(guest)
    session, services = db_session(), current_services()
    if guests.assigned(session, guest) is None:
        exc = DecisionError("Only a guest assigned as a reviewer may approve or reject.", 403)
        return _decision_answer(guest, exc, options.get("reason") or "")
    try:
        done = action(session, services, guest.tenant_id, guest.invoice_id, guest, guest.audit_actor,
                      request_origin(), **options)
    except DecisionError as exc:
        return _decision_answer(guest, exc, options.get("reason") or "")
    if done.gated:
        if not wants_partial():
            return redirect(url_for(".page"), code=303)
        return render_template("review/_guest_decision.html", guest=guest,
                               decision_panel=_decision_panel(guest, gate=done.gate))
    return _after_action(guest, "review/_guest_decision.html",
                         decision_panel=_decision_panel(guest, message=done.message))


def _decision_answer(guest: Guest, exc: DecisionError, reason: str) -> Any:
    db_session().rollback()  # nothing of a refused decision is kept
    if not wants_partial():
        return redirect(url_for(".page"), code=303)
    status = exc.status if exc.status in (403, 409, 422) else 409
    return render_template("review/_guest_decision.html", guest=guest,
                           decision_panel=_decision_panel(guest, error=exc, reason=reason)), status


@bp.post("/review/approve")
@per_ip
@per_link
def approve() -> Any:
    return _decide(decisions.approve, confirmed=request.form.get("confirm") == "1")


@bp.post("/review/reject")
@per_ip
@per_link
def reject() -> Any:
    return _decide(decisions.reject, reason=request.form.get("reason", ""))


# --- the staff side: the invoice's guest links ----------------------------------------------------------------------

def _tenant() -> uuid.UUID:
    return uuid.UUID(required_tenant_id())


def _panel_html(invoice_id: int, **extra: Any) -> str:
    return render_template("review/_guest_links.html", guest_panel=guests.panel(
        db_session(), current_services(), _tenant(), invoice_id, current_user, **extra))


def _staff_answer(invoice_id: int, html_status: int = 200, **extra: Any) -> Any:
    if not wants_partial():
        return redirect(f"{url_for('review.index')}{int(invoice_id)}", code=303)
    html = _panel_html(invoice_id, **extra)
    if html_status == 200:
        services, tenant_id = current_services(), _tenant()
        html += render_template("review/_reviewers.html", oob=True, reviewers_panel=reviewers.panel(
            db_session(), services, tenant_id, invoice_id, current_user))
        html += render_template("review/_timeline.html", oob=True, timeline_panel=timeline.panel(
            db_session(), services, tenant_id, invoice_id, current_user))
    return html, html_status


@staff_bp.post("/review/<int:invoice_id>/guests")
@permission_page("manage_reviewers")
def invite(invoice_id: int) -> Any:
    """Invite a guest reviewer: a link for them (shown once, to copy) and them on the reviewer list."""
    form = {"email": (request.form.get("email") or "").strip()[:300],
            "name": (request.form.get("name") or "").strip()[:300]}
    try:
        link, url = guests.invite(db_session(), current_services(), _tenant(), invoice_id, email=form["email"],
                                  name=form["name"], user=current_user, actor=current_actor(),
                                  origin=request_origin())
    except GuestError as exc:
        db_session().rollback()
        return _staff_answer(invoice_id, 422, error=exc, form=form)
    recipient = guests.email_of(current_services().keyring, link)
    return _staff_answer(invoice_id, new_url=url, new_for=recipient,
                         message=f"{recipient} can review this invoice through the link below until it expires.")


@staff_bp.post("/review/<int:invoice_id>/guests/<uuid:link_id>/revoke")
@permission_page("manage_reviewers")
def revoke(invoice_id: int, link_id: uuid.UUID) -> Any:
    link = guests.revoke(db_session(), current_services(), _tenant(), invoice_id, link_id, user=current_user,
                         actor=current_actor(), origin=request_origin())
    if link is None:
        return _staff_answer(invoice_id, 404, error=GuestError("That link is not on this invoice."))
    return _staff_answer(invoice_id, message="The link is revoked: it no longer opens the review.")


# --- the staff side: the workspace's guest link lifetime (on /settings/review/) -----------------------------------

@staff_bp.app_template_global("review_guest_settings")
def guest_settings(days: int | str | None = None, error: GuestError | None = None,
                   message: str | None = None) -> dict[str, Any]:
    """What ``review/_guest_settings.html`` shows: the lifetime (or what was typed), an error or a message."""
    return {"days": days if days is not None else guests.link_days(db_session(), _tenant()), "error": error,
            "message": message}


@staff_bp.post("/settings/review/guest-links")
@permission_page("review_rules")
def save_link_days() -> Any:
    """Set how long new guest links work (1 to 90 days); 422 beside the field otherwise, nothing saved."""
    typed = (request.form.get("days") or "").strip()[:20]
    try:
        days = guests.parse_days(typed)
    except GuestError as exc:
        wants_partial()  # the answer varies by the htmx headers like every other one here
        return render_template("review/_guest_settings.html", guest_settings=guest_settings(typed, exc)), 422
    changed = guests.set_link_days(db_session(), _tenant(), days, current_actor(), request_origin())
    message = (f"New guest links work for {days} days. Links already sent keep their own expiry."
               if changed else "Nothing changed.")
    if not wants_partial():
        flash(message, "success")
        return redirect(url_for("review_settings.page"), code=303)
    return render_template("review/_guest_settings.html", guest_settings=guest_settings(days, message=message))
