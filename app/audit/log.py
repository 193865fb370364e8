"""The one writer of audit rows: redacts secrets, chains each row to the tenant's previous one.

Each row's hash is an HMAC-SHA256 under the first key of ``AUDIT_CHAIN_KEYS``, a key that lives outside the
database, so someone who can write the database can delete or rewrite rows but cannot re-sign the chain after it.
The keys travel with the session factory (``bind_chain_keys`` in ``create_app``), as the tenant travels with the
session. Rows also carry their place in the tenant's chain (``seq``), so a removed prefix can be named.

Appends take a per-tenant transaction-level advisory lock, so concurrent writers queue up instead of
forking the chain. The lock and the row commit with the caller's transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEntry, RetentionBoundary
from app.config import parse_encryption_keys

GENESIS = "0" * 64
REDACTED = "[redacted]"
_SECRET_KEY = re.compile(r"(pass(word)?|secret|token|private|api[_-]?key|key$|code$|credential|authorization)",
                         re.IGNORECASE)
_LOCK_NAMESPACE = 0x41554449  # "AUDI": keeps our advisory locks apart from anyone else's
CHAIN_KEYS_INFO = "audit_chain_keys"


@dataclass(frozen=True)
class ChainKeys:
    """The audit chain's HMAC keys: the first signs, every one verifies."""

    keys: tuple[tuple[str, bytes], ...] = field(repr=False)

    @classmethod
    def from_config(cls, raw: str) -> ChainKeys:
        return cls(tuple(parse_encryption_keys(raw, "AUDIT_CHAIN_KEYS")))

    @property
    def signing_id(self) -> str:
        return self.keys[0][0]

    def key(self, key_id: str) -> bytes | None:
        return next((k for kid, k in self.keys if kid == key_id), None)

    def __repr__(self) -> str:
        return f"ChainKeys({', '.join(kid for kid, _ in self.keys)})"


def bind_chain_keys(factory: sessionmaker[Session], keys: ChainKeys) -> None:
    """Give every session of ``factory`` the chain keys (``record`` and ``verify`` read them from the session)."""
    factory.configure(info={**factory.kw.get("info", {}), CHAIN_KEYS_INFO: keys})


def chain_keys_of(session: Session) -> ChainKeys:
    keys = session.info.get(CHAIN_KEYS_INFO)
    if keys is None:
        # Fail closed: an unkeyed row written now would be indistinguishable from a forged one.
        raise RuntimeError("audit chain keys are not bound to this session (create_app binds them)")
    return keys


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


def _payload(fields: dict[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)


def row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The unkeyed SHA-256 of rows written before the chain was keyed (verified, never written any more)."""
    return hashlib.sha256((prev_hash + "\n" + _payload(fields)).encode()).hexdigest()


def keyed_row_hash(key: bytes, key_id: str, seq: int, prev_hash: str, fields: dict[str, Any]) -> str:
    """HMAC-SHA256 over the key id, the row's place in the chain, the previous hash and the row's fields."""
    message = f"{key_id}\n{seq}\n{prev_hash}\n{_payload(fields)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


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


def _next_link(session: Session, tid: uuid.UUID, last: Any) -> tuple[str, int]:
    """The previous hash and the sequence number a new row of ``tid`` continues from."""
    if last is not None and last.seq is not None:
        return last.hash, last.seq + 1
    boundary = session.get(RetentionBoundary, tid)
    removed = boundary.removed_count if boundary is not None else 0
    if last is not None:
        # The first keyed row after unkeyed ones: count what came before it.
        kept = session.execute(select(func.count()).select_from(AuditEntry).where(AuditEntry.tenant_id == tid))
        return last.hash, removed + kept.scalar_one() + 1
    if boundary is None:
        return GENESIS, 1
    # Retention removed every row: the chain goes on from the recorded boundary, not from a fresh start.
    seq = boundary.last_removed_seq + 1 if boundary.last_removed_seq is not None else removed + 1
    return boundary.last_removed_hash, seq


def record(session: Session, tenant_id: uuid.UUID | str, actor: Actor, action: str, *,
           target_type: str = "", target_id: Any = "", before: dict | None = None, after: dict | None = None,
           origin: Origin | None = None, now: datetime | None = None, keys: ChainKeys | None = None) -> AuditEntry:
    """Append one audit row in ``session``'s transaction (the session must be set to ``tenant_id``)."""
    tid = uuid.UUID(str(tenant_id))
    origin = origin or Origin()
    keys = keys or chain_keys_of(session)
    session.execute(text("select pg_advisory_xact_lock(:ns, :key)"), {"ns": _LOCK_NAMESPACE, "key": _lock_key(tid)})
    last = session.execute(
        select(AuditEntry.hash, AuditEntry.created_at, AuditEntry.seq).where(AuditEntry.tenant_id == tid)
        .order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    if now is None:
        # The database clock, read under the lock and never behind the previous row, so time order is chain
        # order and retention only ever trims the chain's oldest end.
        now = session.execute(text("select clock_timestamp()")).scalar_one()
        if last is not None and now < last.created_at:
            now = last.created_at
    prev, seq = _next_link(session, tid, last)
    entry = AuditEntry(
        tenant_id=tid, created_at=now,
        actor_type=actor.type, actor_id=actor.id, actor_label=actor.label[:320], action=action,
        target_type=target_type, target_id=str(target_id), before=redact(before) if before is not None else None,
        after=redact(after) if after is not None else None, source_ip=origin.ip,
        user_agent=(origin.user_agent or None) and origin.user_agent[:500], request_id=origin.request_id,
        prev_hash=prev, seq=seq, key_id=keys.signing_id,
    )
    entry.hash = keyed_row_hash(keys.keys[0][1], keys.signing_id, seq, prev, hashed_fields(entry))
    session.add(entry)
    session.flush()
    return entry


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, as (before, after)."""
    keys = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}
