"""Notifications: a user mentioned in a comment on an invoice sees it in the header (an unread count and a list),
and the invoice turns unread for them in the inbox.

It lives in the review package (not ``users``): every notification points at an invoice's review and reads its inbox
row for the number and company, and ``users`` sits below ``review`` in the layering.

"Unread in the inbox" keeps the inbox's one rule (a read mark older than the invoice's ``changed_at``): a mention
moves the user's read mark back to just before ``changed_at`` rather than adding a second condition to the
inbox's query. Opening the invoice moves it forward again, as any visit does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.review.models import Notification, ReadMark, ReviewInvoice
from app.review.times import when

LISTED = 20  # newest notifications the list shows
JUST_BEFORE = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Item:
    """One notification as the list shows it."""

    id: uuid.UUID
    invoice_id: int
    phrase: str  # "Olive Owner mentioned you on 10452 · Contoso"
    when: str
    unread: bool


def notify_mentioned(session: Session, tenant_id: uuid.UUID | str, invoice_id: int, user_ids: Iterable[uuid.UUID],
                     *, event_id: uuid.UUID | None, actor_name: str) -> int:
    """Each user is told they were mentioned, and the invoice is unread for them; returns how many were told."""
    tid = uuid.UUID(str(tenant_id))
    ids = sorted(set(user_ids), key=str)
    if not ids:
        return 0
    now = dt.datetime.now(dt.UTC)
    for user_id in ids:
        session.add(Notification(id=uuid.uuid4(), tenant_id=tid, user_id=user_id, invoice_id=invoice_id,
                                 event_id=event_id, kind="mentioned", actor_name=actor_name[:200], created_at=now))
    changed_at = session.execute(select(ReviewInvoice.changed_at).where(ReviewInvoice.invoice_id == invoice_id)
                                 ).scalar_one_or_none()
    if changed_at is not None:
        # A user who never opened the invoice has no mark and is unread already.
        session.execute(update(ReadMark).where(ReadMark.invoice_id == invoice_id, ReadMark.user_id.in_(ids),
                                               ReadMark.read_at >= changed_at)
                        .values(read_at=changed_at - JUST_BEFORE))
    session.flush()
    return len(ids)


def unread_count(session: Session, user_id: uuid.UUID) -> int:
    return int(session.execute(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))).scalar_one())


def items(session: Session, user_id: uuid.UUID, tz: dt.tzinfo = dt.UTC, limit: int = LISTED) -> list[Item]:
    """The user's newest notifications with the invoice's number and company (an invoice no longer in review
    shows its id)."""
    rows = session.execute(
        select(Notification, ReviewInvoice.invoice_number, ReviewInvoice.company_name)
        .outerjoin(ReviewInvoice, ReviewInvoice.invoice_id == Notification.invoice_id)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id).limit(limit)).tuples()
    now = dt.datetime.now(dt.UTC)
    out = []
    for n, number, company in rows:
        on = f"{number} · {company}" if number else f"invoice {n.invoice_id}"
        out.append(Item(n.id, n.invoice_id, f"{n.actor_name or 'Someone'} mentioned you on {on}",
                        when(n.created_at, tz, now), n.read_at is None))
    return out


def mark_read(session: Session, user_id: uuid.UUID, *, invoice_id: int | None = None,
              notification_id: uuid.UUID | None = None) -> int:
    """Mark the user's unread notifications read: all, those of one invoice, or one; returns how many."""
    query = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if invoice_id is not None:
        query = query.where(Notification.invoice_id == invoice_id)
    if notification_id is not None:
        query = query.where(Notification.id == notification_id)
    result = session.execute(query.values(read_at=dt.datetime.now(dt.UTC)))
    return int(getattr(result, "rowcount", 0) or 0)


def invoice_of(session: Session, user_id: uuid.UUID, notification_id: uuid.UUID) -> int | None:
    """The invoice a notification of this user's points at (None: not theirs or gone)."""
    return session.execute(select(Notification.invoice_id).where(
        Notification.id == notification_id, Notification.user_id == user_id)).scalar_one_or_none()
