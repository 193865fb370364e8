"""Walk each tenant's chain and report the first broken link, or a prefix removed outside retention.

Anchoring: the first kept row must follow the tenant's recorded retention boundary (or the genesis hash when
retention never removed anything), so deleting the oldest rows is seen, not taken for retention.

Rows written before the chain was keyed (``key_id`` NULL, unkeyed SHA-256) cannot be re-signed, because the key is
not in the database; they are accepted only as a prefix, before the tenant's first keyed row, and retention ages
them out within 90 days. An unkeyed row after a keyed one is a break: it is what re-hashing with plain SHA-256
looks like.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import GENESIS, ChainKeys, chain_keys_of, hashed_fields, keyed_row_hash, row_hash
from app.audit.models import AuditEntry, RetentionBoundary

BATCH = 1000


@dataclass
class Break:
    tenant_id: str
    entry_id: int
    reason: str


def _removed_prefix(boundary: RetentionBoundary | None, first: AuditEntry) -> str:
    start = (boundary.last_removed_seq or 0) + 1 if boundary is not None else 1
    if first.seq is not None and (boundary is None or boundary.last_removed_seq is not None) and first.seq > start:
        return f"rows {start}-{first.seq - 1} removed outside retention"
    return f"rows before audit row {first.id} removed outside retention (it does not follow the retention boundary)"


def _anchor_break(boundary: RetentionBoundary | None, first: AuditEntry) -> str | None:
    """Why the first kept row does not follow the recorded boundary, or None."""
    if first.key_id is None and boundary is None:
        return None  # an unkeyed prefix from before anchoring: its start was never recorded
    expected = boundary.last_removed_hash if boundary is not None else GENESIS
    if first.prev_hash != expected:
        return _removed_prefix(boundary, first)
    if (first.seq is not None and boundary is not None and boundary.last_removed_seq is not None
            and first.seq != boundary.last_removed_seq + 1):
        return _removed_prefix(boundary, first)
    if first.seq is not None and boundary is None and first.seq != 1:
        return _removed_prefix(boundary, first)
    return None


def _content_break(entry: AuditEntry, keys: ChainKeys, keyed_seen: bool) -> str | None:
    """Why the row's own hash does not hold, or None."""
    if entry.key_id is None:
        if keyed_seen:
            return "unkeyed row after the chain became keyed (rewritten and re-hashed?)"
        return None if row_hash(entry.prev_hash, hashed_fields(entry)) == entry.hash else \
            "row content does not match its hash"
    key = keys.key(entry.key_id)
    if key is None:
        return f"signed with unknown key id {entry.key_id!r}"
    if entry.seq is None:
        return "keyed row without a sequence number"
    expected = keyed_row_hash(key, entry.key_id, entry.seq, entry.prev_hash, hashed_fields(entry))
    return None if hmac.compare_digest(expected, entry.hash) else "row content does not match its keyed hash"


def verify_tenant(session: Session, tenant_id: uuid.UUID | str,
                  keys: ChainKeys | None = None) -> tuple[int, Break | None]:
    """Return (rows checked, first break or None)."""
    tid = uuid.UUID(str(tenant_id))
    keys = keys or chain_keys_of(session)
    boundary = session.get(RetentionBoundary, tid)
    checked, last_id = 0, 0
    prev: AuditEntry | None = None
    keyed_seen = False
    while True:
        rows = session.execute(
            select(AuditEntry).where(AuditEntry.tenant_id == tid, AuditEntry.id > last_id)
            .order_by(AuditEntry.id).limit(BATCH)
        ).scalars().all()
        if not rows:
            return checked, None
        for entry in rows:
            if prev is None:
                reason = _anchor_break(boundary, entry)
                if reason:
                    return checked, Break(str(tid), entry.id, reason)
            elif entry.prev_hash != prev.hash:
                return checked, Break(str(tid), entry.id, "prev_hash does not match the previous row's hash")
            elif entry.seq is not None and prev.seq is not None and entry.seq != prev.seq + 1:
                return checked, Break(str(tid), entry.id, f"sequence jumps from {prev.seq} to {entry.seq}")
            reason = _content_break(entry, keys, keyed_seen)
            if reason:
                return checked, Break(str(tid), entry.id, reason)
            keyed_seen = keyed_seen or entry.key_id is not None
            prev, last_id = entry, entry.id
            checked += 1
        session.expunge_all()
        boundary = None  # expunged with the rest; only the first row is anchored to it


def verify_all(tenant_ids: list[str], session_for: Callable[[str], object]) -> tuple[int, list[Break]]:
    """Verify every tenant; returns rows checked and the first break of each broken tenant."""
    total, breaks = 0, []
    for tid in tenant_ids:
        with session_for(tid) as session:  # type: ignore[attr-defined]
            n, brk = verify_tenant(session, tid)
        total += n
        if brk:
            breaks.append(brk)
    return total, breaks
