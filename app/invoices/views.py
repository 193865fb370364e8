"""The invoices pages for signed-in people: the list, one invoice's branded preview, PDF downloads (job with
progress) and the invoice's public links (create, list with last view, revoke one or all; audited)."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, render_template, request, send_file, url_for
from flask_login import current_user

from app.audit.web import current_actor, current_user_row_id, request_origin
from app.auth.roles import can, permission_page
from app.branding import store as branding_store
from app.connectwise.errors import Busy, ConnectWiseError
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.invoices import links as public_links
from app.invoices import service
from app.invoices.errors import InvoiceUnavailable
from app.invoices.hints import ReferenceHints
from app.invoices.html import render_document_html
from app.invoices.listing import FILTER_TYPES, InvoiceQuery, billing_statuses, list_invoices
from app.invoices.models import PublicLink
from app.invoices.pdf_jobs import pdf_file, pdf_state, request_pdf
from app.invoices.templating import page_size_for
from app.invoices.view_model import document_state, state_badge
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.views.errors import render_error
from app.views.htmx import wants_partial

bp = Blueprint("invoices", __name__, url_prefix="/invoices")
# Sharing an invoice with a client is sending it: the same people who may send emails may make and revoke links.
LINK_PERMISSION = "send_emails"


@bp.errorhandler(InvoiceUnavailable)
def _unavailable(exc: InvoiceUnavailable):
    """Why an invoice cannot be shown, as an error page (htmx: a toast), with Retry-After when waiting helps."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return render_error(exc.status, str(exc), headers)


def _client():
    services = current_services()
    return tenant_client(db_session(), services.keyring, services.config, services.redis)



def _can_share() -> bool:
    return can(current_user.role, LINK_PERMISSION)


def base_url() -> str:
    return current_services().config.BASE_URL.rstrip("/")


@bp.get("/")
@permission_page("view")
def index():
    query = InvoiceQuery.from_args(request.args)
    context: dict[str, Any] = {"query": query, "types": FILTER_TYPES, "statuses": [], "result": None, "error": None,
                               "connected": True, "can_share": _can_share(),
                               # After paging (not while typing a search) focus moves to the first new row.
                               "focus_first_row": request.headers.get("HX-Trigger") in ("page-newer", "page-older")}
    try:
        with _client() as client:
            # Both reads go through the client's short per-tenant cache; the list itself pages in ConnectWise.
            statuses, result = client.parallel([lambda: billing_statuses(client),
                                                lambda: list_invoices(client, query)])
        context.update(statuses=statuses, result=result)
    except NotConnected:
        context["connected"] = False
    except Busy:
        raise  # the app's 503 "busy" answer with Retry-After, not an inline error
    except ConnectWiseError as exc:
        context["error"] = str(exc)
    template = "invoices/_list.html" if wants_partial() else "invoices/page.html"
    return render_template(template, **context)


@bp.get("/<int:invoice_id>")
@permission_page("view")
def preview(invoice_id: int):
    stored = branding_store.load(db_session(), required_tenant_id())
    services = current_services()
    redis = services.redis
    with service.open_client(db_session(), services.keyring, services.config, redis) as client:
        doc = service.load_document(client, invoice_id, hints=ReferenceHints(redis))
    logo_url = (url_for("branding.logo", tenant_id=required_tenant_id(), version=stored.version)
                if stored.has_logo else None)
    html = render_document_html(doc, stored.branding, logo_url=logo_url, pdf_url=None)
    public_links.record_view(db_session(), required_tenant_id(), invoice_id, doc.totals.total, kind="page",
                             viewer="staff")
    state = document_state(doc)
    return render_template("invoices/preview.html", doc=doc, document=html, stored=stored, state=state,
                           paper=page_size_for(doc, stored.page_size_choice),
                           state_badge=state_badge(state),
                           brand_css_url=url_for("branding.brand_css", tenant_id=required_tenant_id(),
                                                 version=stored.version),
                           can_share=_can_share(), **_links_context(invoice_id))


# -- PDF -------------------------------------------------------------------------------------------------------


@bp.post("/<int:invoice_id>/pdf")
@permission_page("view")
def pdf_start(invoice_id: int):
    size = request.form.get("size") or request.args.get("size") or ""
    if size:
        try:
            size = branding_store.check_page_size(size)
        except ValueError:
            abort(400, description="Choose A4 or Letter.")
    else:
        size = branding_store.load(db_session(), required_tenant_id()).page_size_choice
    state = request_pdf(current_services().redis, required_tenant_id(), invoice_id, size)
    return render_template("invoices/_pdf_job.html", state=state)


@bp.get("/pdf/<key>")
@permission_page("view")
def pdf_status(key: str):
    state = pdf_state(current_services().redis, required_tenant_id(), key)
    if state is None:
        abort(404, description="That download has expired. Start it again.")
    return render_template("invoices/_pdf_job.html", state=state)


@bp.get("/pdf/<key>/file")
@permission_page("view")
def pdf_download(key: str):
    redis = current_services().redis
    state = pdf_state(redis, required_tenant_id(), key)
    data = pdf_file(redis, required_tenant_id(), key) if state and state.status == "done" else None
    if state is None or data is None:
        abort(404, description="That download has expired. Start it again.")
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=state.filename, max_age=0)


# -- public links ----------------------------------------------------------------------------------------------


def _links_context(invoice_id: int, new_url: str | None = None, error: str | None = None,
                   stable_url: str | None = None) -> dict[str, Any]:
    links = public_links.links_for_invoice(db_session(), invoice_id) if _can_share() else []
    now = datetime.now(UTC)
    return {"invoice_id": invoice_id, "links": [(link, link.status(now)) for link in links], "new_url": new_url,
            "link_error": error, "max_expiry": public_links.MAX_EXPIRY_DAYS, "stable_url": stable_url}


@bp.post("/<int:invoice_id>/links")
@permission_page(LINK_PERMISSION)
def link_create(invoice_id: int):
    """"Copy public link" (compact=1, from the list or the links card): the invoice's one stable link, made the
    first time. Without compact, the links card's "another link" form: a new link, with an expiry if given."""
    if request.form.get("compact") == "1":
        return _copy_current(invoice_id)
    try:
        expires_at = public_links.expiry_from_days(request.form.get("expires_days", ""))
    except public_links.LinkError as exc:
        return render_template("invoices/_links.html", can_share=True, **_links_context(invoice_id, error=str(exc))), 422
    new = public_links.create_link(db_session(), required_tenant_id(), invoice_id, actor=current_actor(),
                                   created_by=current_user_row_id(), expires_at=expires_at, origin=request_origin(),
                                   keyring=current_services().keyring)
    url = base_url() + public_links.public_path(new.token)
    return render_template("invoices/_links.html", can_share=True, **_links_context(invoice_id, new_url=url))


def _copy_current(invoice_id: int):
    try:
        _, url = public_links.current_link(current_services(), db_session(), required_tenant_id(), invoice_id,
                                           current_user_row_id(), actor=current_actor(), origin=request_origin())
    except public_links.LinkError as exc:
        abort(400, description=str(exc))
    # The list names the row's invoice beside the link (its number came with the click: shown escaped, cut short).
    if request.form.get("place") == "card":  # the whole card again: the new link shows in its list too
        return render_template("invoices/_links.html", can_share=True,
                               **_links_context(invoice_id, stable_url=url))
    number = request.form.get("number", "")[:64]
    return render_template("invoices/_copy_link.html", url=url, invoice_id=invoice_id, number=number, place="list")


@bp.post("/<int:invoice_id>/links/<link_id>/copy")
@permission_page(LINK_PERMISSION)
def link_copy(invoice_id: int, link_id: str):
    """One listed link's URL again (links that kept their token and are still live)."""
    try:
        lid = uuid.UUID(link_id)
    except ValueError:
        abort(404)
    link = db_session().get(PublicLink, lid)
    token = public_links.link_token(current_services().keyring, link) if link is not None else None
    if link is None or link.invoice_id != invoice_id or token is None or link.status(datetime.now(UTC)) != "active":
        abort(404, description="That link cannot be copied: it was revoked, has expired, or was shown only once.")
    return render_template("invoices/_copy_link.html", url=base_url() + public_links.public_path(token),
                           invoice_id=invoice_id, place="card")


@bp.post("/<int:invoice_id>/links/<link_id>/revoke")
@permission_page(LINK_PERMISSION)
def link_revoke(invoice_id: int, link_id: str):
    try:
        uuid.UUID(link_id)
    except ValueError:
        abort(404)
    link = public_links.revoke(db_session(), link_id, invoice_id=invoice_id, actor=current_actor(),
                               revoked_by=current_user.id, origin=request_origin())
    if link is None:
        abort(404, description="There is no such link.")
    return render_template("invoices/_links.html", can_share=True, **_links_context(invoice_id))


@bp.post("/<int:invoice_id>/links/revoke-all")
@permission_page(LINK_PERMISSION)
def link_revoke_all(invoice_id: int):
    public_links.revoke_all(db_session(), required_tenant_id(), invoice_id, actor=current_actor(),
                            revoked_by=current_user.id, origin=request_origin())
    return render_template("invoices/_links.html", can_share=True, **_links_context(invoice_id))
