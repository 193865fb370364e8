"""The sending tables (migration 0018): the workspace's send settings, one row per message sent, bulk-send
batches and the delivery webhook's processed event ids. The logic is in ``app.sending.service`` and its neighbours."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, LargeBinary, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped, encrypted


class SendSettings(TenantScoped, Base):
    """One row per workspace; absent means the defaults in ``app.sending.settings``."""

    __tablename__ = "send_settings"
    __tenant_key__ = "primary_key"

    subject_template: Mapped[str] = mapped_column(Text)
    body_template: Mapped[str] = mapped_column(Text)
    reminder_subject_template: Mapped[str] = mapped_column(Text)
    reminder_body_template: Mapped[str] = mapped_column(Text)
    attach_pdf: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    sent_status_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sent_status_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reminders_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    remind_days_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remind_every_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                    onupdate=func.now())


class SendBatch(TenantScoped, Base):
    """A bulk send: its messages point at it, so progress is a count over ``invoice_sends``."""

    __tablename__ = "send_batches"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    source: Mapped[str] = mapped_column(String(16))  # invoices | review | reminders
    total: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InvoiceSend(TenantScoped, Base):
    """One message to a client about one invoice (the invoice itself or a reminder). Recipients are encrypted: they
    are people outside the workspace. ``status`` is ours (queued, sending, sent, failed, skipped); ``delivery`` is
    Mailgun's last word on it (accepted, delivered, failed, bounced, complained)."""

    __tablename__ = "invoice_sends"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    invoice_id: Mapped[int] = mapped_column(Integer)
    invoice_number: Mapped[str] = mapped_column(String(64), default="", server_default="")
    kind: Mapped[str] = mapped_column(String(16))  # invoice | reminder
    batch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("send_batches.id"),
                                                       nullable=True)
    to_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, info=encrypted("to"))
    cc_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, info=encrypted("cc"))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    delivery: Mapped[str | None] = mapped_column(String(16), nullable=True)
    delivery_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivery_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    writeback: Mapped[str | None] = mapped_column(String(16), nullable=True)  # done | failed | not_set | skipped
    writeback_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    requested_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                    onupdate=func.now())


class MailWebhookEvent(TenantScoped, Base):
    """A delivery event already processed: Mailgun retries, and each event id counts once."""

    __tablename__ = "mail_webhook_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
