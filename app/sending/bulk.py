"""Bulk sends: many invoices at once (ticked on the invoices list, or every approved invoice of the review inbox),
each to its bill-to contact. A ``send_batches`` row; each message is an ordinary send pointing at it, so progress
is a count over ``invoice_sends`` by ``batch_id``. At most ``MAX_BATCH`` invoices a batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.sending import service
from app.sending.models import InvoiceSend, SendBatch
from app.services import Services

MAX_BATCH = 200
SOURCES = ("invoices", "review", "reminders")


class BatchError(ValueError):
    """A bulk send that cannot start (shown beside the button)."""


@dataclass(frozen=True)
class Progress:
    batch: SendBatch
    counts: dict[str, int]
    problems: list[InvoiceSend]  # skipped and failed sends, with their reasons

    @property
    def done(self) -> int:
        return self.counts["sent"] + self.counts["failed"] + self.counts["skipped"]

    @property
    def finished(self) -> bool:
        return self.done >= self.batch.total


def parse_ids(values: Iterable[str]) -> list[int]:
    """Invoice ids from the form, in order, duplicates dropped. Raises BatchError."""
    ids: list[int] = []
    for raw in values:
        try:
            n = int(str(raw).strip())
        except ValueError as exc:
            raise BatchError("That is not a list of invoices.") from exc
        if n <= 0:
            raise BatchError("That is not a list of invoices.")
        if n not in ids:
            ids.append(n)
    return ids


def start_batch(services: Services, session: Session, tenant_id: uuid.UUID | str, actor: Actor,
                invoice_ids: list[int], *, source: str, numbers: dict[int, str] | None = None,
                origin: Origin | None = None) -> SendBatch:
    """One batch and a queued send per invoice (to its bill-to contact). Raises BatchError."""
    if source not in SOURCES:
        raise BatchError(f"Unknown source {source!r}.")
    if not invoice_ids:
        raise BatchError("Tick the invoices to send first.")
    if len(invoice_ids) > MAX_BATCH:
        raise BatchError(f"At most {MAX_BATCH} invoices in one bulk send; {len(invoice_ids)} were chosen. "
                         "Send them in parts.")
    tid = uuid.UUID(str(tenant_id))
    requested_by = uuid.UUID(actor.id) if actor.type == "user" and actor.id else None
    batch = SendBatch(id=uuid.uuid4(), tenant_id=tid, source=source, total=len(invoice_ids),
                      requested_by=requested_by)
    session.add(batch)
    session.flush()
    record(session, tid, actor, "invoice.bulk_send_started", target_type="send_batch", target_id=batch.id,
           after={"source": source, "invoices": len(invoice_ids)}, origin=origin)
    for invoice_id in invoice_ids:
        service.queue_send(services, session, tid, actor, invoice_id=invoice_id, to=(), batch_id=batch.id,
                           invoice_number=(numbers or {}).get(invoice_id, ""), origin=origin)
    return batch


def progress(session: Session, batch_id: uuid.UUID) -> Progress | None:
    batch = session.get(SendBatch, batch_id)
    if batch is None:
        return None
    rows = session.execute(select(InvoiceSend.status, func.count()).where(InvoiceSend.batch_id == batch_id)
                           .group_by(InvoiceSend.status)).all()
    problems = list(session.execute(select(InvoiceSend).where(InvoiceSend.batch_id == batch_id,
                                                              InvoiceSend.status.in_(("skipped", "failed")))
                                    .order_by(InvoiceSend.status, InvoiceSend.invoice_number)).scalars())
    return Progress(batch, service.batch_counts((str(s), int(n)) for s, n in rows), problems)
