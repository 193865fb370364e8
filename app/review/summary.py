"""The inbox's rows (``ReviewInvoice``), kept in step with snapshots and flags, so the inbox reads one table.

The sweep calls ``record_content`` for each snapshot it writes (and for an unchanged one that has no row yet:
snapshots stored before the inbox existed would otherwise never reach it), ``refresh_flags`` for each invoice whose flags it
re-checked, and ``mark_left`` for invoices that left the open set (sent or closed in ConnectWise); marking a flag
OK and re-evaluating the rules call ``refresh_flags`` too. "Open" flags here are those neither cleared nor marked
OK: a dismissed flag no longer holds an invoice in the Flagged tab.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.invoices.service import InvoicePayloads
from app.review.models import WORST, Flag, ReviewInvoice, Snapshot

_COUNTED = {"time_count": "time/entries", "product_count": "procurement/products", "expense_count": "expense/entries"}


def _line_count(payloads: InvoicePayloads, path: str) -> int:
    lines = payloads.collections.get(path)
    return len(lines) if isinstance(lines, list | tuple) else 0  # frozen payloads hold tuples


def record_content(session: Session, tenant_id: uuid.UUID, snapshot: Snapshot, payloads: InvoicePayloads,
                   now: dt.datetime) -> ReviewInvoice:
    """Copy a freshly written snapshot's plain columns and line counts to its inbox row (made if new); the
    content changed, so the row becomes unread for everyone and any "changed in ConnectWise" banner is answered."""
    row = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == snapshot.invoice_id)
                          ).scalar_one_or_none()
    if row is None:
        row = ReviewInvoice(id=uuid.uuid4(), tenant_id=tenant_id, invoice_id=snapshot.invoice_id, first_seen_at=now,
                            state="needs_review", worst_flag=0, open_flags=0, blocking_flags=0)
        session.add(row)
    row.invoice_number, row.company_name = snapshot.invoice_number, snapshot.company_name
    row.display_type, row.total, row.currency = snapshot.display_type, snapshot.total, snapshot.currency
    row.status_id, row.status_name = snapshot.status_id, snapshot.status_name
    row.invoice_date, row.due_date = snapshot.invoice_date, snapshot.due_date
    for column, path in _COUNTED.items():
        setattr(row, column, _line_count(payloads, path))
    row.is_open, row.left_open_at, row.changed_at, row.cw_changed_at = True, None, now, None
    return row


def without_rows(session: Session, invoice_ids: Iterable[int]) -> set[int]:
    """Those of these invoices that have no inbox row (snapshots stored before the inbox existed)."""
    ids = set(invoice_ids)
    if not ids:
        return set()
    found = session.execute(select(ReviewInvoice.invoice_id).where(ReviewInvoice.invoice_id.in_(sorted(ids)))).scalars()
    return ids - set(found)


def refresh_flags(session: Session, invoice_ids: Iterable[int]) -> None:
    """Recount the open flags of these invoices onto their inbox rows (one grouped query)."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return
    session.flush()
    counted = session.execute(
        select(Flag.invoice_id, Flag.severity, func.count())
        .where(Flag.invoice_id.in_(ids), Flag.cleared_at.is_(None), Flag.marked_ok_at.is_(None))
        .group_by(Flag.invoice_id, Flag.severity)).tuples().all()
    by_invoice: dict[int, dict[str, int]] = {}
    for invoice_id, severity, count in counted:
        by_invoice.setdefault(invoice_id, {})[severity] = count
    for row in session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id.in_(ids))).scalars():
        counts = by_invoice.get(row.invoice_id, {})
        row.open_flags = sum(counts.values())
        row.blocking_flags = counts.get("error", 0) + counts.get("warning", 0)
        row.worst_flag = max((WORST.get(s, 0) for s in counts), default=0)


def mark_left(session: Session, invoice_ids: Iterable[int], now: dt.datetime) -> None:
    """These invoices left the open set: their rows stay (Closed tab, decision history) with no open flags."""
    ids = sorted(set(invoice_ids))
    if ids:
        session.execute(update(ReviewInvoice).where(ReviewInvoice.invoice_id.in_(ids), ReviewInvoice.is_open)
                        .values(is_open=False, left_open_at=now, open_flags=0, blocking_flags=0, worst_flag=0))


def note_cw_change(session: Session, invoice_id: int, at: dt.datetime) -> None:
    """ConnectWise says the invoice changed after our snapshot (a callback before its rescan): the page's banner."""
    session.execute(update(ReviewInvoice).where(ReviewInvoice.invoice_id == invoice_id)
                    .values(cw_changed_at=at))
