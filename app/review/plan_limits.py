"""The plan's review limit inside review: which open invoices a limited plan reviews, and which are read-only.

A sweep under a limit of N reviews the N most recent open invoices (by invoice date, then id; ``fetch`` picks
them from the headers before reading any lines). Invoices beyond it that were reviewed before (say, before a
downgrade) keep their snapshot, flags and decisions, shown read-only: nothing is deleted, and decisions and edits
on them are refused while the workspace is over the limit. The same order answers both questions, so the inbox
rows a sweep just reviewed are exactly those ``reviewable_ids`` allows. The limit comes from the caller (billing's
``review_limit``); None is unlimited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.review.models import ReviewInvoice, Sweep

READ_ONLY = ("This invoice is beyond your plan's review limit ({limit} most recent open invoices), so it is "
             "read-only: its flags and decisions are kept. Upgrade to Pro to review it.")


class BeyondLimit(Exception):
    """A decision or edit on an invoice beyond the plan's review limit; the message says why."""


def _ranked(limit: int):
    return (select(ReviewInvoice.invoice_id).where(ReviewInvoice.is_open)
            .order_by(ReviewInvoice.invoice_date.desc().nulls_last(), ReviewInvoice.invoice_id.desc()).limit(limit))


def reviewable_ids(session: Session, limit: int | None) -> set[int] | None:
    """The open invoices a plan with ``limit`` reviews now (None: all of them)."""
    if limit is None:
        return None
    return set(session.execute(_ranked(limit)).scalars())


def read_only_ids(session: Session, invoice_ids: Iterable[int], limit: int | None) -> set[int]:
    """Those of these invoices that are open and beyond ``limit`` (read-only now)."""
    ids = sorted({int(i) for i in invoice_ids})
    if limit is None or not ids:
        return set()
    open_ids = set(session.execute(select(ReviewInvoice.invoice_id)
                                   .where(ReviewInvoice.invoice_id.in_(ids), ReviewInvoice.is_open)).scalars())
    return open_ids - (reviewable_ids(session, limit) or set())


def is_reviewable(session: Session, invoice_id: int, limit: int | None) -> bool:
    """Whether decisions and edits on the invoice are allowed under ``limit``. An invoice no longer open (its
    decisions are history) and one not in review yet are left to the pages' own checks."""
    if limit is None:
        return True
    row = session.execute(select(ReviewInvoice.is_open).where(ReviewInvoice.invoice_id == int(invoice_id))
                          ).scalar_one_or_none()
    if not row:
        return True
    return int(invoice_id) in (reviewable_ids(session, limit) or set())


def check_reviewable(session: Session, invoice_ids: Iterable[int], limit: int | None) -> None:
    """Raise BeyondLimit when any of these invoices is read-only under ``limit``."""
    if limit is None:
        return
    for invoice_id in invoice_ids:
        if not is_reviewable(session, invoice_id, limit):
            raise BeyondLimit(READ_ONLY.format(limit=limit))


@dataclass(frozen=True)
class Usage:
    """For the inbox's banner: how many open invoices the plan reviews, of how many are open."""

    limit: int
    reviewed: int
    open_total: int

    @property
    def over(self) -> bool:
        return self.open_total > self.limit


def usage(session: Session, limit: int | None) -> Usage | None:
    """The review usage under ``limit`` (None: unlimited). The open total is the last successful full sweep's
    count (a limited sweep is always full); before one, the open invoices in review."""
    if limit is None:
        return None
    in_review = session.execute(select(func.count()).select_from(ReviewInvoice).where(ReviewInvoice.is_open)
                                ).scalar_one()
    last = session.execute(select(Sweep).where(Sweep.outcome == "ok").order_by(Sweep.finished_at.desc().nulls_last())
                           .limit(1)).scalar_one_or_none()
    total = last.invoices_seen if last is not None and last.kind == "full" else 0
    total = max(total, in_review)
    return Usage(limit=limit, reviewed=min(limit, total), open_total=total)


def posted_invoice_ids(view_args: dict | None, form_lists: Iterable[list[str]]) -> list[int]:
    """The invoices a request acts on: its route's ``invoice_id``, or a bulk form's selected ids."""
    if view_args and "invoice_id" in view_args:
        return [int(view_args["invoice_id"])]
    return [int(v) for values in form_lists for v in values if v.strip().isdigit()]
