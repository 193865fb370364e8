"""Public links (only a hash of each token is stored) and link views (usage metadata, never invoice content)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, LargeBinary, Numeric, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped, encrypted


class PublicLink(TenantScoped, Base):
    """A revocable link to one invoice: the hash is the lookup; the token is kept only encrypted, for copying again."""

    __tablename__ = "public_links"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    invoice_id: Mapped[int] = mapped_column(Integer)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    # The token itself, encrypted, so the invoice's one stable link can be copied again (migration 0017).
    token_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, info=encrypted("token"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True),
                                                         ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True),
                                                         ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    last_viewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    view_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def status(self, now: datetime) -> str:
        """active | expired | revoked (revoked wins: it was a decision)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class LinkView(TenantScoped, Base):
    """One render of an invoice: which, when, its total, page or PDF, client or staff. Kept 90 days."""

    __tablename__ = "link_views"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    link_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True),
                                                      ForeignKey("public_links.id", ondelete="SET NULL"),
                                                      nullable=True)
    invoice_id: Mapped[int] = mapped_column(Integer)
    viewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    total: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    kind: Mapped[str] = mapped_column(String(8))  # page | pdf
    viewer: Mapped[str] = mapped_column(String(8))  # client | staff
