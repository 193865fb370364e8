"""Queueing a message to a client about one invoice, and what a send reads back: its recipients, the sends of an
invoice, the invoice's public link and the cover message's token values.

A send is a row in ``invoice_sends`` (status ``queued``, recipients encrypted; none yet means "the bill-to contact,
looked up when it is sent", which is how bulk sends start), an audit row ``invoice.send_queued`` (the invoice number
and how many recipients, never the addresses) and one job on the ``sending`` queue, queued once the transaction
commits. A subject or body a person edited is kept encrypted in Redis until the job has sent it (two weeks at most):
the table holds no message text, and without it the job fills the workspace's templates instead.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from babel.dates import format_date
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.invoices.document import InvoiceDocument, format_money
from app.invoices.view_model import babel_locale
from app.jobs.queue import enqueue
from app.security.crypto import FieldRef, Keyring
from app.sending.models import InvoiceSend
from app.services import Services
from app.tenants.models import Tenant

QUEUE = "sending"
KINDS = ("invoice", "reminder")
PENDING = ("queued", "sending")
TEXT_TTL_SECONDS = 14 * 86400
_QUEUED = "sending_jobs_to_queue"
TABLE = InvoiceSend.__tablename__


class SendError(ValueError):
    """A send that cannot be queued (shown to the person beside the form)."""


def _ref(tenant_id: uuid.UUID | str, send_id: uuid.UUID | str, field: str) -> FieldRef:
    return FieldRef(str(tenant_id), TABLE, str(send_id), field)


def recipients_of(keyring: Keyring, row: InvoiceSend) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The send's To and CC addresses, decrypted."""

    def read(blob: bytes | None, field: str) -> tuple[str, ...]:
        if not blob:
            return ()
        return tuple(a for a in keyring.decrypt(blob, _ref(row.tenant_id, row.id, field)).split(",") if a)

    return read(row.to_enc, "to"), read(row.cc_enc, "cc")


def set_recipients(keyring: Keyring, row: InvoiceSend, to: Sequence[str], cc: Sequence[str]) -> None:
    row.to_enc = keyring.encrypt(",".join(to), _ref(row.tenant_id, row.id, "to")) if to else None
    row.cc_enc = keyring.encrypt(",".join(cc), _ref(row.tenant_id, row.id, "cc")) if cc else None


def _text_key(tenant_id: uuid.UUID | str, send_id: uuid.UUID | str) -> str:
    return f"bi:send-text:{tenant_id}:{send_id}"


def custom_text(services: Services, tenant_id: uuid.UUID | str, send_id: uuid.UUID | str) -> tuple[str, str] | None:
    """The subject and body a person wrote for this send, if any (kept until sent)."""
    raw = services.redis.get(_text_key(tenant_id, send_id))
    if not isinstance(raw, bytes) or not raw:
        return None
    plain = services.keyring.decrypt(raw, _ref(tenant_id, send_id, "text"))
    subject, _, body = plain.partition("\n")
    return subject, body


def forget_text(services: Services, tenant_id: uuid.UUID | str, send_id: uuid.UUID | str) -> None:
    services.redis.delete(_text_key(tenant_id, send_id))


def _queue_after_commit(session: Session, services: Services, tenant_id: str, send_id: uuid.UUID) -> None:
    """The job goes out when the row's transaction commits (a worker must find the row), never on rollback."""
    queued: list[tuple[Services, str, str]] | None = session.info.get(_QUEUED)
    if queued is None:
        queued = session.info[_QUEUED] = []

        @event.listens_for(session, "after_commit")
        def _send(s: Session) -> None:
            from app.sending.jobs import send_job

            for services_, tid, sid in s.info.pop(_QUEUED, []):
                enqueue(services_.redis, send_job, tid, sid, queue=QUEUE, job_id=f"send-{sid}",
                        retry=_retry(), job_timeout=300, result_ttl=3600, failure_ttl=7 * 86400)

        @event.listens_for(session, "after_rollback")
        def _drop(s: Session) -> None:
            s.info.pop(_QUEUED, None)

    queued.append((services, str(tenant_id), str(send_id)))


RETRY_DELAYS = (30, 120, 600)  # seconds before the 2nd, 3rd and 4th try of a send job


def _retry() -> Any:
    from rq import Retry

    return Retry(max=len(RETRY_DELAYS), interval=list(RETRY_DELAYS))


def queue_send(services: Services, session: Session, tenant_id: uuid.UUID | str, actor: Actor, *, invoice_id: int,
               to: Sequence[str], cc: Sequence[str] = (), kind: str = "invoice", batch_id: uuid.UUID | None = None,
               subject: str | None = None, body: str | None = None, invoice_number: str = "",
               origin: Origin | None = None) -> InvoiceSend:
    """Record one message as queued (audited) and queue its job after commit. ``to`` empty: the job sends to the
    invoice's bill-to contact, or skips it with the reason when there is none."""
    if kind not in KINDS:
        raise SendError(f"Unknown kind of send {kind!r}.")
    if int(invoice_id) <= 0:
        raise SendError("That is not an invoice id.")
    tid = uuid.UUID(str(tenant_id))
    requested_by = uuid.UUID(actor.id) if actor.type == "user" and actor.id else None
    row = InvoiceSend(id=uuid.uuid4(), tenant_id=tid, invoice_id=int(invoice_id), invoice_number=invoice_number[:64],
                      kind=kind, batch_id=batch_id, status="queued", attempts=0, requested_by=requested_by,
                      created_at=dt.datetime.now(dt.UTC))
    set_recipients(services.keyring, row, tuple(to), tuple(cc))
    session.add(row)
    session.flush()
    if subject is not None and body is not None:
        plain = f"{subject.replace(chr(10), ' ').strip()}\n{body}"
        services.redis.set(_text_key(tid, row.id), services.keyring.encrypt(plain, _ref(tid, row.id, "text")),
                           ex=TEXT_TTL_SECONDS)
    record(session, tid, actor, "invoice.send_queued", target_type="invoice", target_id=int(invoice_id),
           after={"send_id": str(row.id), "invoice_number": row.invoice_number, "kind": kind,
                  "recipients": len(to) + len(cc) if to else None, "batch_id": str(batch_id) if batch_id else None},
           origin=origin)
    _queue_after_commit(session, services, str(tid), row.id)
    return row


def sends_of_invoice(session: Session, invoice_id: int, limit: int = 20) -> list[InvoiceSend]:
    """The invoice's sends, newest first."""
    return list(session.execute(select(InvoiceSend).where(InvoiceSend.invoice_id == int(invoice_id))
                                .order_by(InvoiceSend.created_at.desc()).limit(limit)).scalars())


def sender_name(session: Session, tenant_id: uuid.UUID | str) -> str:
    """The name a client sees the mail from: the workspace's name."""
    tenant = session.get(Tenant, uuid.UUID(str(tenant_id)))
    return tenant.name if tenant is not None else ""


# --- the invoice's public link ----------------------------------------------------------------------------------

# --- the cover message's tokens ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tokens:
    client_name: str
    number: str
    amount_due: str
    due_date: str
    link: str
    sender: str

    def as_dict(self, *, with_link: bool = True) -> dict[str, str]:
        values = dict(client_name=self.client_name, number=self.number, amount_due=self.amount_due,
                      due_date=self.due_date, link=self.link, sender=self.sender)
        if not with_link:
            values.pop("link")
        return values


def tokens_for(doc: InvoiceDocument, *, sender: str, link: str = "", locale: str = "en-US") -> Tokens:
    """The cover message's tokens; the due date reads as on the document (the workspace's locale)."""
    due = doc.due_date
    return Tokens(client_name=doc.bill_to.name or doc.company_name, number=doc.number,
                  amount_due=format_money(doc.totals.balance, doc.currency),
                  due_date=format_date(due, "medium", locale=babel_locale(locale)) if due is not None
                  else "upon receipt",
                  link=link, sender=sender)


def batch_counts(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    counts = {"queued": 0, "sending": 0, "sent": 0, "failed": 0, "skipped": 0}
    for status, n in rows:
        counts[status] = counts.get(status, 0) + int(n)
    return counts
