"""The tenant row and its settings."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Global, TenantScoped


class Tenant(Global, Base):
    """An MSP. RLS on ``id``: a session sees only its own tenant's row."""

    __tablename__ = "tenants"
    __global_reason__ = "the tenants themselves: RLS on id, each session sees only its own row"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TenantSettings(TenantScoped, Base):
    """Per-tenant switches; one row per tenant."""

    __tablename__ = "tenant_settings"
    __tenant_key__ = "primary_key"

    review_storage_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    support_access_requires_approval: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    locale: Mapped[str] = mapped_column(String(16), default="en-US", server_default="en-US")
    # The role a member sync gives new ConnectWise members; None: they arrive as ``no_access``.
    new_member_role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
