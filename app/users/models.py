"""The user row, and the email changes ConnectWise proposes for it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

# Most access first; ``no_access``: listed, cannot sign in (app/auth/roles.py gives it no permission).
ROLES = ("owner", "admin", "billing_manager", "reviewer", "viewer", "no_access")
# Owners and admins manage the account; member sync never touches their rows (a ConnectWise change to them could
# hand the account to whoever controls the ConnectWise data).
PRIVILEGED_ROLES = frozenset({"owner", "admin"})


class User(TenantScoped, Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("users_tenant_email_key", "tenant_id", func.lower("email"), unique=True),
        Index("users_tenant_cw_member_key", "tenant_id", "cw_member_id", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(32), default="viewer")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    cw_member_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cw_identifier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # "app" or "sync" while inactive: a sync may undo only its own deactivation.
    deactivation_source: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    # Flask-Login protocol; the id carries the tenant so the loader can set RLS before it queries.
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.tenant_id}:{self.id}"


class EmailChangeProposal(TenantScoped, Base):
    """ConnectWise says a user's email changed; it applies only when an owner or admin accepts it."""

    __tablename__ = "user_email_proposals"
    __table_args__ = (Index("user_email_proposals_tenant_user_key", "tenant_id", "user_id", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"))
    cw_member_id: Mapped[int] = mapped_column(Integer)
    current_email: Mapped[str] = mapped_column(String(320))
    proposed_email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(8), default="open")  # open | rejected
    decided_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True),
                                                         ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
