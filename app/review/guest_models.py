"""The guest links table (``review_guest_links``, migration 0016): one row per recipient's link to one invoice's
review. The logic is ``app.review.guests``."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import DateTime, Integer, LargeBinary, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped, encrypted


class GuestLink(TenantScoped, Base):
    """A per-recipient link to one invoice's review: only the token's SHA-256 is kept; the recipient's email and
    name are encrypted (they name a person outside the workspace)."""

    __tablename__ = "review_guest_links"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    invoice_id: Mapped[int] = mapped_column(Integer)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary)
    email_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("email"))
    name_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("name"))
    member_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
