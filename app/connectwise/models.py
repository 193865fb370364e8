"""The tenant's ConnectWise connection (keys encrypted) and the state of its member sync."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, LargeBinary, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped, encrypted


class Connection(TenantScoped, Base):
    __tablename__ = "connectwise_connections"
    __tenant_key__ = "unique"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    site: Mapped[str] = mapped_column(String(255))
    company_id: Mapped[str] = mapped_column(String(64))
    public_key_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("public_key"))
    private_key_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("private_key"))
    # When the private key was last entered: all the settings page says about it.
    private_key_saved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    codebase: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_test_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    last_test_report: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())


class MemberSync(TenantScoped, Base):
    """One row per tenant: the last member sync run and the one in flight."""

    __tablename__ = "connectwise_member_syncs"
    __tenant_key__ = "primary_key"

    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="never")  # never|queued|running|ok|failed
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    deactivated: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class OnPremHost(TenantScoped, Base):
    """A host an owner allowed as the tenant's own ConnectWise server (``host`` or ``host:port``, as typed into the
    site and normalised)."""

    __tablename__ = "connectwise_onprem_hosts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    host: Mapped[str] = mapped_column(String(270))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
