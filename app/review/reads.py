"""Read marks: when each user last opened an invoice's review page. The inbox's "unread" is an invoice whose
content changed (``ReviewInvoice.changed_at``) after the user's mark, or that the user never opened."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.review.models import ReadMark


def mark_read(session: Session, tenant_id: uuid.UUID | str, invoice_id: int, user_id: uuid.UUID,
              at: dt.datetime | None = None) -> dt.datetime:
    """Record that the user opened the invoice now (one row per user and invoice, moved forward); returns when."""
    at = at or dt.datetime.now(dt.UTC)
    statement = insert(ReadMark).values(id=uuid.uuid4(), tenant_id=uuid.UUID(str(tenant_id)), invoice_id=invoice_id,
                                        user_id=user_id, read_at=at)
    # Two tabs opening the page at once both land on the one row; the later moment wins.
    session.execute(statement.on_conflict_do_update(
        index_elements=[ReadMark.tenant_id, ReadMark.user_id, ReadMark.invoice_id],
        set_={"read_at": statement.excluded.read_at}, where=ReadMark.read_at < statement.excluded.read_at))
    return at


def read_at(session: Session, invoice_id: int, user_id: uuid.UUID) -> dt.datetime | None:
    """When the user last opened the invoice's page (None: never)."""
    return session.execute(select(ReadMark.read_at).where(ReadMark.invoice_id == invoice_id,
                                                          ReadMark.user_id == user_id)).scalar_one_or_none()
