"""Walk each tenant's chain and report the first broken link."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import hashed_fields, row_hash
from app.audit.models import AuditEntry

BATCH = 1000


@dataclass
class Break:
    tenant_id: str
    entry_id: int
    reason: str


def verify_tenant(session: Session, tenant_id: uuid.UUID | str) -> tuple[int, Break | None]:
    """Return (rows checked, first break or None). The oldest kept row anchors the chain (retention)."""
    checked, last_id, prev_hash = 0, 0, None
    while True:
        rows = session.execute(
            select(AuditEntry).where(AuditEntry.tenant_id == uuid.UUID(str(tenant_id)), AuditEntry.id > last_id)
            .order_by(AuditEntry.id).limit(BATCH)
        ).scalars().all()
        if not rows:
            return checked, None
        for entry in rows:
            if prev_hash is not None and entry.prev_hash != prev_hash:
                return checked, Break(str(tenant_id), entry.id, "prev_hash does not match the previous row's hash")
            if row_hash(entry.prev_hash, hashed_fields(entry)) != entry.hash:
                return checked, Break(str(tenant_id), entry.id, "row content does not match its hash")
            prev_hash, last_id = entry.hash, entry.id
            checked += 1
        session.expunge_all()


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
