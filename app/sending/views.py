"""Sending pages for staff: the send panel on an invoice (the bill-to contact, To/CC, the cover message filled in,
send, the sends so far with their delivery), bulk sends from the invoices list and the review inbox's Approved
tab, and a bulk send's progress. Every route needs ``send_emails``."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, abort, render_template, request
from sqlalchemy import select

from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.branding import store as branding_store
from app.connectwise import errors as cw_errors
from app.invoices import service as invoices
from app.invoices.errors import InvoiceUnavailable
from app.invoices.hints import ReferenceHints
from app.review.models import ReviewInvoice
from app.sending import bulk, service
from app.sending.recipients import AddressError, BillTo, bill_to, parse_addresses
from app.sending.settings import load_settings
from app.sending.templating import TOKENS, render_message
from app.services import current_services
from app.tenancy import db_session, required_tenant_id

bp = Blueprint("sending", __name__)
MAX_SUBJECT, MAX_BODY = 250, 10_000


def _sends(invoice_id: int) -> list[tuple[Any, tuple[str, ...]]]:
    keyring = current_services().keyring
    rows = service.sends_of_invoice(db_session(), invoice_id)
    return [(row, sum(service.recipients_of(keyring, row), ())) for row in rows]


def _panel(invoice_id: int, *, status: int = 200, **context: Any) -> tuple[str, int]:
    sends = _sends(invoice_id)
    context.setdefault("errors", {})
    html = render_template("sending/_invoice_panel.html", invoice_id=invoice_id, sends=sends, tokens=TOKENS,
                           polling=any(s.status in service.PENDING for s, _ in sends), **context)
    return html, status


@bp.get("/invoices/<int:invoice_id>/send")
@permission_page("send_emails")
def invoice_panel(invoice_id: int) -> tuple[str, int]:
    """The send panel on an invoice's page, loaded by htmx after the page: read from ConnectWise, filled in."""
    services = current_services()
    session = db_session()
    cfg = load_settings(session)
    sender = service.sender_name(session, required_tenant_id())
    try:
        with invoices.open_client(session, services.keyring, services.config, services.redis) as client:
            doc = invoices.load_document(client, invoice_id, hints=ReferenceHints(services.redis))
            found = bill_to(client, invoice_id)
    except InvoiceUnavailable as exc:
        return _panel(invoice_id, unavailable=str(exc))
    except cw_errors.ConnectWiseError as exc:
        return _panel(invoice_id, unavailable=f"ConnectWise could not be read: {exc}. Try again in a minute.")
    locale = branding_store.load(session, required_tenant_id()).branding.locale
    tokens = service.tokens_for(doc, sender=sender, locale=locale).as_dict(with_link=False)
    form = {"to": ", ".join(found.to), "cc": ", ".join(found.cc),
            "subject": render_message(cfg.subject_template, tokens), "body": render_message(cfg.body_template, tokens)}
    return _panel(invoice_id, form=form, found=found, number=doc.number, attach_pdf=cfg.attach_pdf)


@bp.post("/invoices/<int:invoice_id>/send")
@permission_page("send_emails")
def send_invoice(invoice_id: int) -> tuple[str, int]:
    """Queue the message as composed; a bad address or an empty field answers 422 with the message beside it."""
    f = request.form
    form = {k: str(f.get(k) or "") for k in ("to", "cc", "subject", "body")}
    found = BillTo((), (), str(f.get("contact_name") or "")[:200], str(f.get("source") or "")[:40])
    number = str(f.get("number") or "")[:64]
    errors: dict[str, str] = {}
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    try:
        to = parse_addresses(form["to"], required=True, label="To")
    except AddressError as exc:
        errors["to"] = str(exc)
    try:
        cc = parse_addresses(form["cc"], required=False, label="CC")
    except AddressError as exc:
        errors["cc"] = str(exc)
    subject, body = form["subject"].strip(), form["body"].replace("\r\n", "\n").strip()
    if not subject:
        errors["subject"] = "Enter a subject."
    elif len(subject) > MAX_SUBJECT:
        errors["subject"] = f"At most {MAX_SUBJECT} characters."
    if not body:
        errors["body"] = "Enter a message."
    elif len(body) > MAX_BODY:
        errors["body"] = f"At most {MAX_BODY:,} characters."
    attach_pdf = load_settings(db_session()).attach_pdf
    if errors:
        return _panel(invoice_id, status=422, form=form, found=found, number=number, errors=errors,
                      attach_pdf=attach_pdf)
    row = service.queue_send(current_services(), db_session(), required_tenant_id(), current_actor(),
                             invoice_id=invoice_id, to=to, cc=cc, subject=subject, body=body, invoice_number=number,
                             origin=request_origin())
    db_session().commit()
    return _panel(invoice_id, form=form, found=found, number=number, queued=row, attach_pdf=attach_pdf)


@bp.get("/invoices/<int:invoice_id>/sends")
@permission_page("send_emails")
def invoice_sends(invoice_id: int) -> str:
    """The invoice's sends so far (polled while one is on its way)."""
    sends = _sends(invoice_id)
    return render_template("sending/_compose_sends.html", invoice_id=invoice_id, sends=sends,
                           polling=any(s.status in service.PENDING for s, _ in sends))


# --- bulk -------------------------------------------------------------------------------------------------------

def _start(invoice_ids: list[int], source: str, numbers: dict[int, str] | None = None) -> tuple[str, int]:
    try:
        batch = bulk.start_batch(current_services(), db_session(), required_tenant_id(), current_actor(),
                                 invoice_ids, source=source, numbers=numbers, origin=request_origin())
    except bulk.BatchError as exc:
        return render_template("sending/_bulk_progress.html", error=str(exc), p=None), 422
    db_session().commit()
    return render_template("sending/_bulk_progress.html", p=bulk.progress(db_session(), batch.id), error=None), 200


@bp.post("/sending/bulk")
@permission_page("send_emails")
def bulk_send() -> tuple[str, int]:
    """Send the ticked invoices of the list, each to its bill-to contact."""
    try:
        ids = bulk.parse_ids(request.form.getlist("invoice_id"))
    except bulk.BatchError as exc:
        return render_template("sending/_bulk_progress.html", error=str(exc), p=None), 422
    return _start(ids, "invoices")


@bp.post("/sending/bulk/approved")
@permission_page("send_emails")
def send_approved() -> tuple[str, int]:
    """Send every open invoice the review inbox lists as approved, each to its bill-to contact."""
    rows = db_session().execute(select(ReviewInvoice.invoice_id, ReviewInvoice.invoice_number)
                                .where(ReviewInvoice.is_open, ReviewInvoice.state == "approved")
                                .order_by(ReviewInvoice.invoice_id)).all()
    if not rows:
        return render_template("sending/_bulk_progress.html", p=None,
                               error="No approved invoice is waiting to be sent."), 422
    return _start([r.invoice_id for r in rows], "review", {r.invoice_id: r.invoice_number for r in rows})


@bp.get("/sending/batches/<batch_id>")
@permission_page("send_emails")
def batch_progress(batch_id: str) -> str:
    try:
        bid = uuid.UUID(batch_id)
    except ValueError:
        abort(404)
    p = bulk.progress(db_session(), bid)
    if p is None:
        abort(404)
    return render_template("sending/_bulk_progress.html", p=p, error=None)
