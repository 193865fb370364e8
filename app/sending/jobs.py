"""The ``sending`` queue's job: one message about one invoice, from its ``invoice_sends`` row.

It reads the invoice from ConnectWise (its figures fill the cover message; the PDF is attached when the workspace
says so), finds the bill-to contact when no recipient was given (none: ``skipped`` with the reason), takes the
invoice's public link, and sends through ``app.mail.send`` from the workspace's name with Reply-To the person who
asked for the send (a client's answer reaches someone who knows about it, not a no-reply box; bulk and reminder
sends without a person have none), and ``bi_send`` = the row's id as a custom variable so the delivery webhook can
find the row. Mailgun or ConnectWise failing is retried by RQ (``RETRY_DELAYS``); the last try's failure marks the
row ``failed`` with its reason. After a send, the billing status is written back (``app.sending.writeback``).

No database session is held while ConnectWise or Mailgun is asked. Audit rows: ``invoice.sent`` and
``invoice.send_failed`` (and ``invoice.send_skipped``) with the invoice number and the recipient count only.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from app.audit.log import Actor, record
from app.branding import store as branding_store
from app.connectwise import errors as cw_errors
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.invoices import links as public_links
from app.invoices import service as invoices
from app.invoices.errors import InvoiceUnavailable
from app.invoices.hints import ReferenceHints
from app.invoices.pdf import render_pdf
from app.invoices.pdf_jobs import pdf_filename
from app.invoices.templating import page_size_for
from app.jobs.runtime import job
from app.mail.send import Attachment, MailError, Message, send
from app.sending import service
from app.sending.models import InvoiceSend
from app.sending.recipients import bill_to
from app.sending.settings import load_settings
from app.sending.templating import render_html, render_message
from app.sending.writeback import Outcome, write_sent_status
from app.services import Services
from app.tenancy import tenant_session
from app.users.models import User

log = logging.getLogger(__name__)
RETRY_DELAYS = service.RETRY_DELAYS
SYSTEM = Actor.system("sending")


class SendRetry(RuntimeError):
    """This try failed for a reason that may pass; RQ tries again (the row says why and when)."""


def _retries_left() -> int:
    from rq import get_current_job

    current = get_current_job()
    return int(current.retries_left or 0) if current is not None else 0


@job
def send_job(services: Services, tenant_id: str, send_id: str) -> str:
    """The worker's try of one send."""
    return perform(services, tenant_id, send_id, retries_left=_retries_left())


def perform(services: Services, tenant_id: str, send_id: str, *, retries_left: int = 0,
            client_options: Mapping[str, Any] | None = None) -> str:
    """One try; returns the row's status afterwards. Raises ``SendRetry`` when another try is due."""
    sid = uuid.UUID(str(send_id))
    factory = services.session_factory
    with tenant_session(tenant_id, factory) as session:
        row = session.execute(select(InvoiceSend).where(InvoiceSend.id == sid).with_for_update()).scalar_one_or_none()
        if row is None or row.status not in service.PENDING:
            return row.status if row is not None else "gone"
        row.status, row.attempts = "sending", row.attempts + 1
        attempt, invoice_id, kind = row.attempts, row.invoice_id, row.kind
        to, cc = service.recipients_of(services.keyring, row)
        cfg = load_settings(session)
        stored = branding_store.load(session, tenant_id)
        sender = service.sender_name(session, tenant_id)
        requester = session.get(User, row.requested_by) if row.requested_by else None
        reply_to = requester.email if requester is not None and requester.active else ""
        try:
            client = tenant_client(session, services.keyring, services.config, services.redis, for_page=False,
                                   **dict(client_options or {}))
        except NotConnected:
            client = None
        except cw_errors.ConnectWiseError as exc:
            return _failed(services, tenant_id, sid, f"ConnectWise could not be reached: {exc}.", retries_left,
                           attempt)
    if client is None:
        return _failed(services, tenant_id, sid, "ConnectWise is not connected for this workspace, so nothing was "
                                                 "sent.", 0, attempt)
    custom = service.custom_text(services, tenant_id, sid)
    try:
        with client:
            try:
                doc = invoices.load_document(client, invoice_id, hints=ReferenceHints(services.redis))
                if not to:
                    found = bill_to(client, invoice_id)
                    if not found.to:
                        return _skipped(services, tenant_id, sid, doc.number, found.reason)
                    to, cc = found.to, found.cc
            except (InvoiceUnavailable, cw_errors.ConnectWiseError) as exc:
                final = isinstance(exc, InvoiceUnavailable) and exc.reason == "not_found"
                return _failed(services, tenant_id, sid, str(exc), 0 if final else retries_left, attempt)
            with tenant_session(tenant_id, factory) as session:
                _, link = public_links.current_link(services, session, tenant_id, invoice_id, actor=SYSTEM)
                row = session.get(InvoiceSend, sid)
                if row is not None:
                    row.invoice_number = doc.number[:64]
                    service.set_recipients(services.keyring, row, to, cc)
            tokens = service.tokens_for(doc, sender=sender, link=link, locale=stored.branding.locale).as_dict()
            reminder = kind == "reminder"
            subject_t, body_t = custom or (
                cfg.reminder_subject_template if reminder else cfg.subject_template,
                cfg.reminder_body_template if reminder else cfg.body_template)
            attachments: tuple[Attachment, ...] = ()
            if cfg.attach_pdf:
                size = page_size_for(doc, stored.page_size_choice)
                data = render_pdf(doc, stored.branding, logo=stored.logo, page_size=size)
                attachments = (Attachment(pdf_filename(doc.number, invoice_id), "application/pdf", data),)
            message = Message(to=", ".join(to), cc=tuple(cc), subject=render_message(subject_t, tokens)[:250],
                              text=render_message(body_t, tokens), html=render_html(body_t, tokens, link),
                              from_name=sender, reply_to=reply_to, attachments=attachments,
                              variables={"bi_send": str(sid)})
            try:
                message_id = send(services, message)
            except MailError as exc:
                return _failed(services, tenant_id, sid, str(exc), retries_left, attempt)
            _sent(services, tenant_id, sid, message_id, len(to) + len(cc))
            service.forget_text(services, tenant_id, sid)
            if reminder:
                outcome = Outcome("skipped", "A reminder leaves the billing status as it is.")
            else:
                outcome = write_sent_status(client, invoice_id, cfg.sent_status_id, cfg.sent_status_name)
    except SendRetry:
        raise
    except Exception:  # a bug must not leave the row "sending" for ever
        log.exception("send stopped", extra={"event": "invoice.send_error"})
        return _failed(services, tenant_id, sid, "An unexpected error stopped the send.", retries_left, attempt)
    with tenant_session(tenant_id, factory) as session:
        row = session.get(InvoiceSend, sid)
        if row is not None:
            row.writeback, row.writeback_reason = outcome.state, outcome.reason
            if outcome.state == "failed":
                record(session, tenant_id, SYSTEM, "invoice.sent_status_failed", target_type="invoice",
                       target_id=invoice_id, after={"send_id": str(sid), "invoice_number": row.invoice_number,
                                                    "reason": outcome.reason})
    return "sent"


def _sent(services: Services, tenant_id: str, sid: uuid.UUID, message_id: str | None, recipients: int) -> None:
    with tenant_session(tenant_id, services.session_factory) as session:
        row = session.get(InvoiceSend, sid)
        if row is None:
            return
        row.status, row.reason, row.provider_message_id = "sent", None, (message_id or "")[:255] or None
        row.sent_at, row.delivery = dt.datetime.now(dt.UTC), "accepted"
        record(session, tenant_id, SYSTEM, "invoice.sent", target_type="invoice", target_id=row.invoice_id,
               after={"send_id": str(sid), "invoice_number": row.invoice_number, "kind": row.kind,
                      "recipients": recipients, "attempts": row.attempts})
    log.info("invoice sent", extra={"event": "invoice.sent"})


def _skipped(services: Services, tenant_id: str, sid: uuid.UUID, number: str, reason: str) -> str:
    with tenant_session(tenant_id, services.session_factory) as session:
        row = session.get(InvoiceSend, sid)
        if row is not None:
            row.status, row.reason, row.invoice_number = "skipped", reason, number[:64]
            record(session, tenant_id, SYSTEM, "invoice.send_skipped", target_type="invoice",
                   target_id=row.invoice_id, after={"send_id": str(sid), "invoice_number": row.invoice_number,
                                                    "reason": reason})
    service.forget_text(services, tenant_id, sid)
    return "skipped"


def _failed(services: Services, tenant_id: str, sid: uuid.UUID, reason: str, retries_left: int,
            attempt: int) -> str:
    """The last try's failure marks the row failed (audited); an earlier one says when it tries again and raises."""
    with tenant_session(tenant_id, services.session_factory) as session:
        row = session.get(InvoiceSend, sid)
        if row is None:
            return "gone"
        if retries_left > 0:
            delay = RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)]
            row.status = "queued"
            row.reason = f"{reason} Trying again in {_duration(delay)} (try {attempt + 1} of {attempt + retries_left})."
        else:
            row.status = "failed"
            row.reason = reason if attempt <= 1 else f"{reason} Gave up after {attempt} tries."
            record(session, tenant_id, SYSTEM, "invoice.send_failed", target_type="invoice",
                   target_id=row.invoice_id, after={"send_id": str(sid), "invoice_number": row.invoice_number,
                                                    "reason": row.reason, "attempts": attempt})
    if retries_left > 0:
        raise SendRetry(reason)
    service.forget_text(services, tenant_id, sid)
    log.info("invoice send failed", extra={"event": "invoice.send_failed"})
    return "failed"


def _duration(seconds: int) -> str:
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"
