"""The branding editor (/settings/branding/, htmx live preview on a real invoice) and the brand assets that
signed-in pages load by URL: the per-tenant stylesheet and the logo (CSP forbids inline style)."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import FileStorage

from app.audit.web import current_actor, current_user_row_id, request_origin
from app.auth.roles import permission_page
from app.branding import store
from app.branding.logo import MAX_UPLOAD_BYTES, Logo, LogoError, process_logo
from app.branding.model import (
    FONTS,
    LOGO_POSITIONS,
    TIME_DETAIL_FIELD_LABELS,
    TIME_DETAIL_FIELDS,
    TIME_DETAIL_LABELS,
    TIME_DETAIL_TYPES,
    Branding,
    BrandingError,
    branding_from_form,
    branding_to_form,
    default_branding,
)
from app.connectwise.errors import Busy, ConnectWiseError
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.invoices import service
from app.invoices.errors import InvoiceUnavailable
from app.invoices.hints import ReferenceHints
from app.invoices.html import branding_css, render_document_html
from app.invoices.listing import recent_invoices
from app.invoices.samples import sample_document
from app.services import current_services
from app.tenancy import current_tenant_id, db_session, required_tenant_id
from app.views.errors import render_error

bp = Blueprint("branding", __name__)
PREVIEW_CSS_TTL = 900
ASSET_MAX_AGE = 7 * 86400  # the version in the URL changes on every save
SAMPLE_LINES = 6
SAMPLE_NOTE = ("A sample invoice, not one of yours: with ConnectWise connected, the preview shows your newest "
               "invoice.")


def _redis() -> Any:
    return current_services().redis


def _client():
    services = current_services()
    return tenant_client(db_session(), services.keyring, services.config, services.redis)


def _editor_context(stored: store.StoredBranding, form: dict[str, Any], errors: dict[str, str] | None = None,
                    invoice_id: int | None = None) -> dict[str, Any]:
    invoices, picker_error, connected = [], None, True
    try:
        with _client() as client:
            invoices = recent_invoices(client, 50)
    except NotConnected:
        connected = False
    except Busy:
        raise  # the app's 503 "busy" answer with Retry-After, not an inline error
    except ConnectWiseError as exc:
        picker_error = str(exc)
    if invoice_id is None and invoices:
        invoice_id = invoices[0].id
    return {"stored": stored, "form": form, "errors": errors or {}, "fonts": FONTS, "positions": LOGO_POSITIONS,
            "td_types": TIME_DETAIL_TYPES, "td_type_labels": TIME_DETAIL_LABELS, "td_fields": TIME_DETAIL_FIELDS,
            "td_field_labels": TIME_DETAIL_FIELD_LABELS, "page_sizes": store.PAGE_SIZE_CHOICES,
            "page_size_labels": store.PAGE_SIZE_LABELS, "invoices": invoices,
            "invoice_id": invoice_id, "picker_error": picker_error, "connected": connected,
            "logo_url": url_for(".logo", tenant_id=required_tenant_id(), version=stored.version)
            if stored.has_logo else None, "max_logo_kb": MAX_UPLOAD_BYTES // 1024}


def _form_of(branding: Branding, page_size: str) -> dict[str, Any]:
    return {**branding_to_form(branding), "page_size": page_size}


def _invoice_arg(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and 0 < len(text) < 10 else None


@bp.get("/settings/branding/")
@permission_page("branding")
def editor():
    stored = store.load(db_session(), required_tenant_id())
    branding = default_branding() if request.args.get("defaults") == "1" else stored.branding
    form = _form_of(branding, stored.page_size_choice)
    return render_template("branding/page.html",
                           **_editor_context(stored, form, invoice_id=_invoice_arg(request.args.get("invoice"))))


def _uploaded_logo() -> tuple[Logo | None, str | None]:
    """The logo in this request's form, re-encoded; or the message saying why it was refused."""
    upload: FileStorage | None = request.files.get("logo")
    if upload is None or not upload.filename:
        return None, None
    data = upload.stream.read(MAX_UPLOAD_BYTES + 1)
    try:
        return process_logo(data), None
    except LogoError as exc:
        return None, str(exc)


@bp.post("/settings/branding/")
@permission_page("branding")
def save():
    stored = store.load(db_session(), required_tenant_id())
    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    invoice_id = _invoice_arg(request.form.get("preview_invoice"))
    errors: dict[str, str] = {}
    branding = None
    try:
        branding = branding_from_form(request.form)
    except BrandingError as exc:
        errors[exc.field] = exc.message
    try:
        page_size = store.check_page_size(request.form.get("page_size"))
    except ValueError as exc:
        errors["page_size"] = str(exc)
    logo, logo_error = _uploaded_logo()
    if logo_error:
        errors["logo"] = logo_error
    if errors or branding is None:
        return render_template("branding/page.html", **_editor_context(stored, form, errors, invoice_id)), 422
    store.save(db_session(), required_tenant_id(), branding, page_size=page_size,
               actor=current_actor(), logo=logo,
               remove_logo=request.form.get("remove_logo") == "on" and logo is None, user_id=current_user_row_id(),
               origin=request_origin())
    flash("Branding saved. Invoice pages and PDFs use it from now on.", "success")
    return redirect(url_for(".editor", invoice=invoice_id) if invoice_id else url_for(".editor"))


@bp.post("/settings/branding/preview")
@permission_page("branding")
def preview():
    """The unsaved form, rendered on the picked invoice (htmx swaps it beside the settings)."""
    stored = store.load(db_session(), required_tenant_id())
    context: dict[str, Any] = {"document": None, "message": None, "logo_note": None, "css_url": None,
                               "sample_note": None}
    try:
        branding = branding_from_form(request.form)
    except BrandingError as exc:
        context["message"] = f"Preview paused: {exc.message}."
        return render_template("branding/_preview.html", **context)
    invoice_id = _invoice_arg(request.form.get("preview_invoice"))
    logo, logo_error = _uploaded_logo()
    if logo_error:
        context["logo_note"] = f"Logo not used: {logo_error}"
    if logo is not None:
        # Unsaved: shown from the re-encoded bytes (img-src allows data:), never from what was uploaded.
        logo_url: str | None = f"data:{logo.mime};base64," + base64.b64encode(logo.data).decode()
    elif request.form.get("remove_logo") == "on" or not stored.has_logo:
        logo_url = None
    else:
        logo_url = url_for(".logo", tenant_id=required_tenant_id(), version=stored.version)
    redis = _redis()
    if invoice_id is None:
        # No invoice of theirs to pick (not connected, none yet, or ConnectWise unreadable): a sample, said so.
        doc = sample_document(SAMPLE_LINES)
        context["sample_note"] = SAMPLE_NOTE
    else:
        try:
            with service.open_client(db_session(), current_services().keyring, current_services().config,
                                     redis) as client:
                doc = service.load_document(client, invoice_id, hints=ReferenceHints(redis))
        except InvoiceUnavailable as exc:
            if exc.reason == "busy":  # the app's 503 "busy" answer with Retry-After (a toast), not an inline note
                return render_error(exc.status, str(exc), {"Retry-After": str(exc.retry_after)})
            context["message"] = str(exc)
            return render_template("branding/_preview.html", **context)
    nonce = secrets.token_urlsafe(12)
    _redis().set(_preview_css_key(nonce), branding_css(branding), ex=PREVIEW_CSS_TTL)
    # The form carries the look; the dates follow the workspace's locale as on the saved documents.
    branding = replace(branding, locale=stored.branding.locale)
    context.update(document=render_document_html(doc, branding, logo_url=logo_url, pdf_url=None),
                   css_url=url_for(".preview_css", nonce=nonce), invoice_number=doc.number)
    return render_template("branding/_preview.html", **context)


def _preview_css_key(nonce: str) -> str:
    return f"bi:branding:preview:{required_tenant_id()}:{nonce}"


@bp.get("/settings/branding/preview/<nonce>.css")
@permission_page("branding")
def preview_css(nonce: str):
    if not nonce.replace("-", "").replace("_", "").isalnum() or len(nonce) > 32:
        abort(404)
    css = _redis().get(_preview_css_key(nonce))
    if css is None:
        abort(404)
    return Response(css, mimetype="text/css", headers={"Cache-Control": "private, max-age=900"})


# -- brand assets for signed-in pages ---------------------------------------------------------------------------


def _own_tenant(tenant_id: uuid.UUID) -> None:
    if str(tenant_id) != str(current_tenant_id()):
        abort(404)


@bp.get("/branding/<uuid:tenant_id>/<int:version>.css")
@permission_page("view")
def brand_css(tenant_id: uuid.UUID, version: int):
    _own_tenant(tenant_id)
    stored = store.load(db_session(), tenant_id)
    max_age = ASSET_MAX_AGE if stored.version == version else 0
    return Response(branding_css(stored.branding), mimetype="text/css",
                    headers={"Cache-Control": f"private, max-age={max_age}"})


@bp.get("/branding/<uuid:tenant_id>/logo/<int:version>")
@permission_page("view")
def logo(tenant_id: uuid.UUID, version: int):
    _own_tenant(tenant_id)
    stored = store.load(db_session(), tenant_id)
    if not stored.has_logo:
        abort(404)
    max_age = ASSET_MAX_AGE if stored.version == version else 0
    return Response(stored.logo, mimetype=stored.logo_mime or "application/octet-stream",
                    headers={"Cache-Control": f"private, max-age={max_age}"})
