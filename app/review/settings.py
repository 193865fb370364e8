"""The tenant's review settings: whether review may store invoices at all, and the rule settings.

Turning storage off is what the Trust & Security page promises ("contact us to disable this"): only the CLI or
platform support (through a support grant) calls ``set_storage``. Off purges every snapshot, flag and sweep row of
the tenant in the caller's one transaction, audited with the counts, and sweeps then store nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, delete
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.review.models import Event, Flag, ReadMark, Reviewer, ReviewInvoice, ReviewSettings, Snapshot, Sweep, WriteBack

# Every review table that holds invoice content or its review, emptied when storage goes off.
PURGED: dict[str, Any] = {"snapshots": Snapshot, "flags": Flag, "sweeps": Sweep, "invoices": ReviewInvoice,
                           "reviewers": Reviewer, "reads": ReadMark, "events": Event, "writebacks": WriteBack}


@dataclass(frozen=True)
class Settings:
    storage_enabled: bool = True
    rules: dict = field(default_factory=dict)
    status_map: dict = field(default_factory=dict)


def settings_of(session: Session, tenant_id: uuid.UUID | str) -> Settings:
    row = session.get(ReviewSettings, uuid.UUID(str(tenant_id)))
    if row is None:
        return Settings()
    return Settings(bool(row.storage_enabled), dict(row.rule_settings or {}), dict(row.status_map or {}))


def locked_row(session: Session, tenant_id: uuid.UUID | str) -> ReviewSettings:
    """The tenant's settings row (made if missing), locked for the rest of the transaction: a sweep's writes and
    a purge take it, so they never interleave."""
    tenant_id = uuid.UUID(str(tenant_id))
    row = session.get(ReviewSettings, tenant_id, with_for_update=True)
    if row is None:
        row = ReviewSettings(tenant_id=tenant_id, storage_enabled=True, rule_settings={}, status_map={})
        session.add(row)
        session.flush()
    return row


def set_storage(session: Session, tenant_id: uuid.UUID | str, enabled: bool, actor: Actor,
                origin: Origin | None = None) -> dict[str, int]:
    """Turn review storage on or off; off purges the tenant's review rows. Returns the counts purged."""
    tid = uuid.UUID(str(tenant_id))
    row = locked_row(session, tid)
    before = bool(row.storage_enabled)
    purged = dict.fromkeys(PURGED, 0)
    if not enabled:
        purged = {name: cast(CursorResult[Any], session.execute(delete(model).where(model.tenant_id == tid))).rowcount
                  for name, model in PURGED.items()}
    row.storage_enabled = enabled
    record(session, tid, actor, "review.storage_changed", target_type="review_settings", target_id=tid,
           before={"storage_enabled": before}, after={"storage_enabled": enabled, "purged": purged}, origin=origin)
    return purged
