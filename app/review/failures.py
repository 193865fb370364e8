"""Invoices a sweep could not check, read from the sweep record's ``failures`` (invoice number and reason; a reason
names a record and field, never a value): for the settings page's list of recent sweeps, and for the "N invoices
could not be checked in the last sweep" line that the review pages include (``_last_sweep_failures.html``)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.review.models import Sweep

LISTED = 50  # failures listed per sweep; the count says how many more
REASON_CHARS = 300
UNKNOWN_REASON = "No reason was recorded."


@dataclass(frozen=True)
class InvoiceFailure:
    invoice_id: int | None
    invoice_number: str
    reason: str


@dataclass(frozen=True)
class SweepFailures:
    """The failed invoices of one sweep: ``count`` in all, the first ``LISTED`` of them in ``failures``."""

    sweep_id: uuid.UUID
    started_at: dt.datetime
    count: int
    failures: tuple[InvoiceFailure, ...]

    @property
    def more(self) -> int:
        return max(0, self.count - len(self.failures))

    @property
    def anchor(self) -> str:
        """The id of this sweep's failure list on the settings page (the review pages link to it)."""
        return f"sweep-failures-{self.sweep_id}"


def failures_of(sweep: Sweep) -> SweepFailures | None:
    """The sweep's failed invoices, or None when it checked every invoice it saw."""
    rows = sweep.failures if isinstance(sweep.failures, list) else []
    count = max(sweep.invoices_failed or 0, len(rows))
    if count == 0:
        return None
    listed = tuple(_failure(row) for row in rows[:LISTED])
    return SweepFailures(sweep.id, sweep.started_at, count, listed)


def last_sweep_failures(session: Session) -> SweepFailures | None:
    """The failed invoices of the last sweep that finished (a sweep that failed as a whole lists none, so the
    last one that went through counts); None when it checked every invoice or none has finished."""
    sweep = session.execute(select(Sweep).where(Sweep.outcome == "ok", Sweep.finished_at.is_not(None))
                            .order_by(Sweep.started_at.desc()).limit(1)).scalar_one_or_none()
    return failures_of(sweep) if sweep is not None else None


def _failure(row: object) -> InvoiceFailure:
    # The JSON is ours, but read it as untrusted anyway: a hand-edited or older row must not break a page.
    data = row if isinstance(row, dict) else {}
    invoice_id = data.get("invoice_id")
    number = data.get("invoice_number")
    reason = data.get("reason")
    return InvoiceFailure(invoice_id if isinstance(invoice_id, int) and not isinstance(invoice_id, bool) else None,
                          number if isinstance(number, str) and number else "(no number)",
                          reason[:REASON_CHARS] if isinstance(reason, str) and reason else UNKNOWN_REASON)
