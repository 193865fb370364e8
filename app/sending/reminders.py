"""Payment reminders: a periodic fan-out queues one job per workspace with reminders on; that job finds the invoices
it sent that still have a balance in ConnectWise and are N days before due or M, 2M, ... days overdue, and queues a
reminder (a send like any other, through ``queue_send``) for each step not reminded yet.

Which step an invoice is at comes from the dates alone: the step before due starts N days before the due date, the
k-th overdue step k*M days after it. A step counts as done when the invoice has a reminder (or was sent) on or after
the day that step started, so running twice a day, or after a missed day, never sends a step twice; a step missed
entirely is not sent late once the next one starts. The balances come from ConnectWise in one conditions query per
200 candidates (never one request per invoice); a paid invoice (balance 0), a credit memo and an invoice ConnectWise
no longer has get none.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from rq.job import JobStatus
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.audit.log import Actor
from app.connectwise import errors as cw_errors
from app.connectwise.client import Client
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.jobs.fanout import fan_out
from app.jobs.queue import enqueue, fetch_job
from app.jobs.runtime import job
from app.sending.models import InvoiceSend
from app.sending.service import queue_send, recipients_of
from app.sending.settings import SendConfig, load_settings
from app.services import Services
from app.tenancy import tenant_session

log = logging.getLogger(__name__)
ACTOR = Actor.system("reminders")
CHUNK = 200  # ids per conditions query: keeps the URL well under what ConnectWise's servers take
FIELDS = ("id", "invoiceNumber", "type", "balance", "dueDate")
_LOCK = text("select pg_advisory_xact_lock(hashtext(:k))")
_PENDING = (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.STARTED)


@dataclass(frozen=True)
class OpenInvoice:
    """What a reminder needs to know of an invoice from ConnectWise."""

    id: int
    number: str
    balance: Decimal
    due_date: dt.date | None
    credit_memo: bool


def step_start(config: SendConfig, due: dt.date, today: dt.date) -> dt.date | None:
    """The day the invoice's current reminder step started, or None when today is in no step."""
    if today < due:
        before = config.remind_days_before
        if before and today >= due - dt.timedelta(days=before):
            return due - dt.timedelta(days=before)
        return None
    every = config.remind_every_days
    if not every:
        return None
    steps = (today - due).days // every
    return due + dt.timedelta(days=steps * every) if steps >= 1 else None


def _parse(record: Any) -> OpenInvoice | None:
    if not isinstance(record, dict) or not isinstance(record.get("id"), int):
        return None
    try:
        balance = Decimal(str(record.get("balance")))
    except (InvalidOperation, ValueError):
        return None
    if not balance.is_finite():
        return None
    due: dt.date | None = None
    raw_due = record.get("dueDate")
    if isinstance(raw_due, str) and raw_due:
        try:
            due = dt.date.fromisoformat(raw_due[:10])
        except ValueError:
            due = None
    return OpenInvoice(record["id"], str(record.get("invoiceNumber") or ""), balance, due,
                       record.get("type") == "CreditMemo")


def read_invoices(client: Client, ids: Sequence[int]) -> dict[int, OpenInvoice]:
    """The invoices' current balance and due date, ``CHUNK`` ids per request (uncached: a payment just made
    counts)."""
    found: dict[int, OpenInvoice] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        conditions = f"id in ({','.join(str(int(i)) for i in chunk)})"
        for record in client.get_all("finance/invoices", conditions=conditions, fields=FIELDS, cache=False):
            parsed = _parse(record)
            if parsed is not None:
                found[parsed.id] = parsed
    return found


def _sent_invoices(session: Session) -> dict[int, InvoiceSend]:
    """Each invoice sent to its client (kind invoice, status sent): its latest such send."""
    rows = session.execute(select(InvoiceSend).where(InvoiceSend.kind == "invoice", InvoiceSend.status == "sent")
                           .order_by(InvoiceSend.invoice_id, InvoiceSend.created_at)).scalars()
    return {row.invoice_id: row for row in rows}


def _last_touch(session: Session, invoice_ids: Iterable[int]) -> dict[int, dt.datetime]:
    """When each invoice last had a message of any kind or outcome queued to its client (a skipped or failed
    reminder counts: the step had its try)."""
    ids = list(invoice_ids)
    if not ids:
        return {}
    rows = session.execute(select(InvoiceSend.invoice_id, func.max(InvoiceSend.created_at))
                           .where(InvoiceSend.invoice_id.in_(ids)).group_by(InvoiceSend.invoice_id)).all()
    return {invoice_id: at for invoice_id, at in rows}


def due_reminders(config: SendConfig, invoices: dict[int, OpenInvoice], touched: dict[int, dt.datetime],
                  today: dt.date) -> list[OpenInvoice]:
    """The invoices whose current step has had no message yet, with a balance left."""
    due: list[OpenInvoice] = []
    for invoice in invoices.values():
        if invoice.credit_memo or invoice.balance <= 0 or invoice.due_date is None:
            continue
        start = step_start(config, invoice.due_date, today)
        last = touched.get(invoice.id)
        if start is None or (last is not None and last.astimezone(dt.UTC).date() >= start):
            continue
        due.append(invoice)
    return sorted(due, key=lambda i: i.id)


def run_reminders(services: Services, tenant_id: str, today: dt.date | None = None) -> int:
    """Queue the tenant's reminders due today; returns how many were queued."""
    today = today or dt.datetime.now(dt.UTC).date()
    with tenant_session(tenant_id, services.session_factory) as session:
        config = load_settings(session)
        if not config.reminders_enabled or not (config.remind_days_before or config.remind_every_days):
            return 0
        sent = _sent_invoices(session)
        if not sent:
            return 0
        try:
            client = tenant_client(session, services.keyring, services.config, services.redis, for_page=False)
        except NotConnected:
            return 0
    with client:
        invoices = read_invoices(client, sorted(sent))
    queued = 0
    with tenant_session(tenant_id, services.session_factory) as session:
        # One run per workspace at a time decides: a second one waits here, then sees the first one's reminders.
        session.execute(_LOCK, {"k": f"sending.reminders:{tenant_id}"})
        config = load_settings(session)  # unchanged in the meantime, or the admin's newer word counts
        if not config.reminders_enabled:
            return 0
        for invoice in due_reminders(config, invoices, _last_touch(session, invoices), today):
            original = sent[invoice.id]
            to, cc = recipients_of(services.keyring, original)
            queue_send(services, session, tenant_id, ACTOR, invoice_id=invoice.id, to=to, cc=cc, kind="reminder",
                       invoice_number=invoice.number or original.invoice_number)
            queued += 1
    if queued:
        log.info("reminders queued: %d", queued, extra={"event": "sending.reminders_queued"})
    return queued


def reminders_job_id(tenant_id: str) -> str:
    return f"reminders-{tenant_id}"


@job
def remind_tenant(services: Services, tenant_id: str) -> int:
    """One workspace's reminders, as the worker runs it."""
    try:
        return run_reminders(services, tenant_id)
    except (cw_errors.ConnectWiseError, NotConnected) as exc:
        # The type only: the next run tries again, and nothing was queued for a step that was not reached.
        log.warning("reminders: ConnectWise could not be read: %s", type(exc).__name__,
                    extra={"event": "sending.reminders_cw_failed"})
        return 0


@job
def remind_all_tenants(services: Services) -> int:
    """The periodic fan-out: a reminders job per workspace that has reminders on."""

    def queue_reminders(session: Session, tenant_id: str) -> bool:
        if not load_settings(session).reminders_enabled:
            return False
        pending = fetch_job(services.redis, reminders_job_id(tenant_id))
        if pending is not None and pending.get_status() in _PENDING:
            return False
        enqueue(services.redis, remind_tenant, tenant_id, queue="connectwise", job_id=reminders_job_id(tenant_id),
                job_timeout=900, result_ttl=3600, failure_ttl=7 * 86400)
        return True

    return fan_out(queue_reminders, services.session_factory)
