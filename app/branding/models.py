"""The tenant's stored branding: settings as JSON, the re-encoded logo, and a version for cache-busting URLs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped


class BrandingSettings(TenantScoped, Base):
    """One row per tenant, created on first save; no row means the default branding."""

    __tablename__ = "branding_settings"
    __tenant_key__ = "primary_key"

    settings: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    logo_mime: Mapped[str | None] = mapped_column(String(32), nullable=True)
    logo_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Bumped on every save: the brand CSS and logo URLs carry it, so browsers may cache them for long.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True),
                                                         ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())
