"""The one writer of audit rows: redacts secrets, chains each row to the tenant's previous one.

Appends take a per-tenant transaction-level advisory lock, so concurrent writers queue up instead of
forking the chain. The lock and the row commit with the caller's transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry

GENESIS = "0" * 64
REDACTED = "[redacted]"
_SECRET_KEY = re.compile(r"(pass(word)?|secret|token|private|api[_-]?key|key$|code$|credential|authorization)",
                         re.IGNORECASE)
_LOCK_NAMESPACE = 0x41554449  # "AUDI": keeps our advisory locks apart from anyone else's


@dataclass(frozen=True)
class Actor:
    type: str  # user | system | support
    id: str | None = None
    label: str = ""

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls("system", None, label)

    @classmethod
    def user(cls, user_id: Any, email: str) -> Actor:
        return cls("user", str(user_id), email)


@dataclass(frozen=True)
class Origin:
    """Where the action came from (a request, or nothing for jobs and CLI)."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


def redact(value: Any) -> Any:
    """Replace the values of secret-looking keys, recursively."""
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, "") else redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + "\n" + payload).encode()).hexdigest()


def hashed_fields(entry: AuditEntry) -> dict[str, Any]:
    """The fields covered by the hash, in a stable form (the verifier recomputes from the same)."""
    created = entry.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    return {
        "tenant_id": str(entry.tenant_id), "created_at": created, "actor_type": entry.actor_type,
        "actor_id": entry.actor_id, "actor_label": entry.actor_label, "action": entry.action,
        "target_type": entry.target_type, "target_id": entry.target_id, "before": entry.before,
        "after": entry.after, "source_ip": entry.source_ip, "user_agent": entry.user_agent,
        "request_id": entry.request_id,
    }


def _lock_key(tenant_id: uuid.UUID) -> int:
    return int.from_bytes(hashlib.sha256(tenant_id.bytes).digest()[:4], "big", signed=True)


def record(session: Session, tenant_id: uuid.UUID | str, actor: Actor, action: str, *,
           target_type: str = "", target_id: Any = "", before: dict | None = None, after: dict | None = None,
           origin: Origin | None = None, now: datetime | None = None) -> AuditEntry:
    """Append one audit row in ``session``'s transaction (the session must be set to ``tenant_id``)."""
    tid = uuid.UUID(str(tenant_id))
    origin = origin or Origin()
    session.execute(text("select pg_advisory_xact_lock(:ns, :key)"), {"ns": _LOCK_NAMESPACE, "key": _lock_key(tid)})
    last = session.execute(
        select(AuditEntry.hash, AuditEntry.created_at).where(AuditEntry.tenant_id == tid)
        .order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    if now is None:
        # The database clock, read under the lock and never behind the previous row, so time order is chain
        # order and retention only ever trims the chain's oldest end.
        now = session.execute(text("select clock_timestamp()")).scalar_one()
        if last is not None and now < last.created_at:
            now = last.created_at
    prev = last.hash if last is not None else None
    entry = AuditEntry(
        tenant_id=tid, created_at=now,
        actor_type=actor.type, actor_id=actor.id, actor_label=actor.label[:320], action=action,
        target_type=target_type, target_id=str(target_id), before=redact(before) if before is not None else None,
        after=redact(after) if after is not None else None, source_ip=origin.ip,
        user_agent=(origin.user_agent or None) and origin.user_agent[:500], request_id=origin.request_id,
        prev_hash=prev or GENESIS,
    )
    entry.hash = row_hash(entry.prev_hash, hashed_fields(entry))
    session.add(entry)
    session.flush()
    return entry


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, as (before, after)."""
    keys = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}
