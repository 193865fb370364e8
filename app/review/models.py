"""Review's tables: a snapshot per open invoice, its flags, a record per sweep, and the tenant's review settings.

Ciphertext columns (a snapshot's payloads and document, a flag's message) are declared with ``encrypted(...)`` so
key rotation re-encrypts them; their associated data binds tenant, table, row id and field (``app.review.vault``).
"""

from __future__ import annotations

import datetime as dt  # the `date` columns below would shadow the bare type
import uuid
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Integer, LargeBinary, Numeric, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped, encrypted


class ReviewSettings(TenantScoped, Base):
    """One row per tenant (none means the defaults: storage on, default rule settings)."""

    __tablename__ = "review_settings"
    __tenant_key__ = "primary_key"

    storage_enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    rule_settings: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                    onupdate=func.now())


class Snapshot(TenantScoped, Base):
    """An open invoice as the last sweep found it."""

    __tablename__ = "review_snapshots"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    invoice_id: Mapped[int] = mapped_column(Integer)
    invoice_number: Mapped[str] = mapped_column(String(64))
    company_name: Mapped[str] = mapped_column(Text)
    display_type: Mapped[str] = mapped_column(String(32))
    total: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(8))
    status_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status_name: Mapped[str] = mapped_column(Text)
    invoice_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    due_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    cw_last_updated: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    # What the flags were last computed with (rule settings and rules version): unchanged content and digest
    # mean there is nothing to re-evaluate.
    rules_digest: Mapped[str] = mapped_column(String(64))
    payloads_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("payloads"))
    document_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("document"))
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    snapshot_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Flag(TenantScoped, Base):
    """One problem a rule found; identity (invoice, rule, target) is stable across sweeps."""

    __tablename__ = "review_flags"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    invoice_id: Mapped[int] = mapped_column(Integer)
    invoice_number: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int] = mapped_column(BigInteger)
    severity: Mapped[str] = mapped_column(String(8))
    message_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("message"))
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    cleared_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    marked_ok_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True),
                                                           ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    marked_ok_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Sweep(TenantScoped, Base):
    """One sweep run: when, what it saw and changed, how many ConnectWise requests, and how it ended."""

    __tablename__ = "review_sweeps"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    invoices_seen: Mapped[int] = mapped_column(Integer, server_default="0")
    invoices_changed: Mapped[int] = mapped_column(Integer, server_default="0")
    invoices_failed: Mapped[int] = mapped_column(Integer, server_default="0")
    flags_raised: Mapped[int] = mapped_column(Integer, server_default="0")
    flags_cleared: Mapped[int] = mapped_column(Integer, server_default="0")
    cw_requests: Mapped[int] = mapped_column(Integer, server_default="0")
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # [{"invoice_id", "invoice_number", "reason"}]: reasons name a record and field, never a value.
    failures: Mapped[list] = mapped_column(JSONB, server_default="[]")


class CallbackRegistration(TenantScoped, Base):
    """The tenant's ConnectWise callbacks: the hash of the secret token in their URL, where they were registered
    (site and company) and their ConnectWise ids. No row: no callbacks."""

    __tablename__ = "review_callbacks"
    __tenant_key__ = "primary_key"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    site: Mapped[str] = mapped_column(Text)
    company_id: Mapped[str] = mapped_column(String(64))
    callback_ids: Mapped[list] = mapped_column(JSONB, server_default="[]")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
