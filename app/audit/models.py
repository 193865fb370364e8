"""The audit log row, and the retention boundary that anchors what is left of a tenant's chain after a purge.

The database refuses UPDATE and DELETE of audit rows (see the foundation migration); the boundary is written only
by the retention function (migration 0008) and is read-only for the app.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped


class AuditEntry(TenantScoped, Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("audit_log_tenant_id_id", "tenant_id", "id"),
                      Index("audit_log_created_at", "created_at"),
                      Index("audit_log_tenant_seq", "tenant_id", "seq", unique=True,
                            postgresql_where=text("seq IS NOT NULL")))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(100))
    target_type: Mapped[str] = mapped_column(String(64), default="")
    target_id: Mapped[str] = mapped_column(String(100), default="")
    before: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    after: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    source_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The row's place in its tenant's chain (1, 2, ...) and the id of the HMAC key that signed it; both NULL on
    # rows written before the chain was keyed (unkeyed SHA-256, accepted only before a tenant's first keyed row).
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class RetentionBoundary(TenantScoped, Base):
    """Where retention last cut a tenant's chain: the last removed row, so the first kept row can be anchored."""

    __tablename__ = "audit_retention_boundary"
    __tenant_key__ = "primary_key"

    last_removed_id: Mapped[int] = mapped_column(BigInteger)
    last_removed_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_removed_hash: Mapped[str] = mapped_column(String(64))
    removed_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
