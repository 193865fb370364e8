"""Where the tenant's ConnectWise callbacks stand, as the review settings page shows them: registered (which types,
since when), pending (a job is on it), failed (and why) or off; the keys the registration was made with; and the
callbacks that could not be removed from a site the connection has left.

The keys are kept (AES-GCM, bound to tenant, table and field, rotated with every other secret) because callbacks
live on the site and company they were registered on: once the connection moves or its keys change, these are the
only keys that may still reach them to remove them. They are forgotten as soon as the callbacks are removed.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import DateTime, Integer, LargeBinary, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.connectwise.client import Credentials
from app.db import Base, TenantScoped, encrypted
from app.security.crypto import DecryptionError, FieldRef, Keyring

STATUSES = ("off", "pending", "registered", "failed")
LEFT_KEPT = 5  # the most recent sites we could not clean up, shown until someone registers again


class CallbackState(TenantScoped, Base):
    """One row per tenant (none: callbacks were never asked for)."""

    __tablename__ = "review_callback_state"
    __tenant_key__ = "primary_key"

    status: Mapped[str] = mapped_column(String(16), server_default="off")
    # Why it is failed or off, in words for the settings page; never a key or ConnectWise's raw body.
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    types: Mapped[list] = mapped_column(JSONB, server_default="[]")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")  # failures in a row
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    registered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    keys_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, info=encrypted("keys"))
    # [{"site", "company_id", "ids", "at", "reason"}]: callbacks still registered on a site we could not reach.
    left_behind: Mapped[list] = mapped_column(JSONB, server_default="[]")


def _ref(tenant_id: uuid.UUID | str) -> FieldRef:
    return FieldRef(str(tenant_id), CallbackState.__tablename__, str(tenant_id), "keys")


def state_of(session: Session, tenant_id: uuid.UUID | str) -> CallbackState | None:
    return session.get(CallbackState, uuid.UUID(str(tenant_id)))


def state_row(session: Session, tenant_id: uuid.UUID | str) -> CallbackState:
    """The tenant's row, made (off) if missing."""
    tid = uuid.UUID(str(tenant_id))
    row = session.get(CallbackState, tid, with_for_update=True)
    if row is None:
        row = CallbackState(tenant_id=tid, status="off", types=[], attempts=0, left_behind=[])
        session.add(row)
        session.flush()
    return row


def set_status(session: Session, tenant_id: uuid.UUID | str, status: str, reason: str | None = None) -> CallbackState:
    """Record a new status; a failure counts one more attempt, anything else starts the count again."""
    if status not in STATUSES:
        raise ValueError(f"unknown callback status {status!r}")
    row = state_row(session, tenant_id)
    if status == "failed":
        row.attempts = (row.attempts or 0) + 1
    elif status != "pending":
        row.attempts = 0
    row.status, row.reason, row.changed_at = status, reason, dt.datetime.now(dt.UTC)
    return row


def store_keys(keyring: Keyring, row: CallbackState, creds: Credentials | None) -> None:
    """Keep (or, with None, forget) the keys the tenant's callbacks were registered with."""
    if creds is None:
        row.keys_enc = None
        return
    plain = json.dumps({"site": creds.site, "company_id": creds.company_id, "public_key": creds.public_key,
                        "private_key": creds.private_key})
    row.keys_enc = keyring.encrypt(plain, _ref(row.tenant_id))


def stored_keys(keyring: Keyring, row: CallbackState | None) -> Credentials | None:
    """The keys the callbacks were registered with; None when none are kept or they no longer decrypt."""
    if row is None or not row.keys_enc:
        return None
    try:
        data: Any = json.loads(keyring.decrypt(row.keys_enc, _ref(row.tenant_id)))
    except (DecryptionError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in
                                             ("site", "company_id", "public_key", "private_key")):
        return None
    return Credentials(data["site"], data["company_id"], data["public_key"], data["private_key"])


def note_left_behind(row: CallbackState, site: str, company_id: str, ids: list[int], reason: str) -> None:
    """Remember callbacks still registered on ``site`` that we could not remove (newest first, a few kept)."""
    entry = {"site": site, "company_id": company_id, "ids": [int(i) for i in ids], "reason": reason,
             "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    row.left_behind = [entry, *(row.left_behind or [])][:LEFT_KEPT]
