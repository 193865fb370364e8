"""Review's tables: a snapshot per open invoice, its flags, a record per sweep, the tenant's review settings, and
(part 2) each invoice's review: its inbox row, reviewers, read marks, activity events and status write-backs.

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
    # Decision -> ConnectWise billing status id ({"approved": 3, "rejected": 5, "closed": 7}); missing keys take
    # the defaults chosen by name and flags (``app.review.status_map``).
    status_map: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    guest_link_days: Mapped[int] = mapped_column(Integer, server_default="14")  # a guest link's lifetime (0016)
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


# --- Part 2: the review of each invoice (issue 12) --------------------------------------------------------------
# One row per invoice that has been in review: the inbox's row (plain columns it sorts and searches on, copied from
# the snapshot by ``app.review.summary``) and the review's state. It outlives its snapshot: an invoice that left
# the open set keeps its row (``open`` false) so the Closed tab and the decision's history stay; a storage purge
# removes it like every review row.
REVIEW_STATES = ("needs_review", "approved", "rejected", "closed")
REVIEWER_STATES = ("waiting", "viewed", "approved", "rejected")
WORST = {"none": 0, "info": 1, "warning": 2, "error": 3}  # worst open flag, as a sortable number


class ReviewInvoice(TenantScoped, Base):
    """An invoice's review: its inbox row and where the decision stands."""

    __tablename__ = "review_invoices"

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
    time_count: Mapped[int] = mapped_column(Integer, server_default="0")
    product_count: Mapped[int] = mapped_column(Integer, server_default="0")
    expense_count: Mapped[int] = mapped_column(Integer, server_default="0")
    is_open: Mapped[bool] = mapped_column("open", Boolean, server_default="true")
    left_open_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    state: Mapped[str] = mapped_column(String(16), server_default="needs_review")
    state_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    state_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    # Open (not cleared, not marked OK) flags: the worst severity (WORST), how many, how many error or warning.
    worst_flag: Mapped[int] = mapped_column(Integer, server_default="0")
    open_flags: Mapped[int] = mapped_column(Integer, server_default="0")
    blocking_flags: Mapped[int] = mapped_column(Integer, server_default="0")
    # When the content last changed (a new snapshot hash): "unread" is a read mark older than this.
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # ConnectWise said it changed (a callback, a sweep's change list) after the snapshot was taken: the banner.
    cw_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The routing was read and seeded the reviewers (once; never again after).
    routing_seeded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Reviewer(TenantScoped, Base):
    """A reviewer of one invoice: a user, or a ConnectWise member who may not have signed in yet (or both)."""

    __tablename__ = "review_reviewers"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    invoice_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    member_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    guest_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)  # a guest link (0016)
    name: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), server_default="waiting")
    state_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    source: Mapped[str] = mapped_column(String(16))  # routing | manual | mention
    added_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReadMark(TenantScoped, Base):
    """When a user last opened an invoice's review page."""

    __tablename__ = "review_reads"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    invoice_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    read_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


EVENT_KINDS = ("viewed", "approved", "unapproved", "rejected", "closed", "status_changed", "reviewer_added",
               "reviewer_removed", "flag_marked_ok", "flag_unmarked", "writeback_succeeded", "writeback_failed",
               "writeback_conflict", "commented", "edited", "reopened", "connectwise")


class Event(TenantScoped, Base):
    """One entry of an invoice's activity timeline (ours; ConnectWise's audit trail is merged in when shown).

    ``detail_enc`` holds what the entry says beyond its kind (a reason, a status name, a comment, an edit's before
    and after) as encrypted JSON: reasons and comments quote invoices."""

    __tablename__ = "review_events"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    invoice_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    kind: Mapped[str] = mapped_column(String(32))
    actor_type: Mapped[str] = mapped_column(String(16))  # user | guest | member | system
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor_name: Mapped[str] = mapped_column(Text)
    detail_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, info=encrypted("detail"))
    # A ConnectWise audit-trail entry copied in ("connectwise" kind): its identity, so a re-read adds it once.
    source_key: Mapped[str | None] = mapped_column(String(64), nullable=True)


WRITEBACK_STATES = ("pending", "running", "done", "failed", "conflict", "superseded")


class WriteBack(TenantScoped, Base):
    """A billing status to be written to ConnectWise for a decision, and how that went."""

    __tablename__ = "review_writebacks"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    invoice_id: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))  # approved | rejected | closed | manual
    target_status_id: Mapped[int] = mapped_column(Integer)
    target_status_name: Mapped[str] = mapped_column(Text)
    # The ConnectWise status when the decision was taken: found different at write time means someone changed it.
    expected_status_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16), server_default="pending")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# --- part 3: comment notifications (app.review.notifications) ------------------------------------------------------
NOTIFICATION_KINDS = ("mentioned",)


class Notification(TenantScoped, Base):
    """A user was mentioned in a comment on an invoice: the header's list and unread count. The comment is the
    event; the actor's name is the one the timeline shows (a user's or a guest's, never invoice text)."""

    __tablename__ = "review_notifications"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("review_events.id", ondelete="CASCADE"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), server_default="mentioned")
    actor_name: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
