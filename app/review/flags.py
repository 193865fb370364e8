"""Flags: the rules' findings kept as rows whose identity (invoice, rule, target) is stable across sweeps.

A finding that persists keeps its row and its "Mark as OK"; a flag whose problem is gone gets ``cleared_at``
(the row stays as history); a problem that comes back reopens the same row, unmarked. Messages quote line items,
so they are stored encrypted like snapshots.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.review import summary
from app.review.models import Flag
from app.security.crypto import FieldRef, Keyring

TABLE = Flag.__tablename__
SEVERITIES = ("error", "warning", "info")


class FindingLike(Protocol):
    """What ``app.review.rules.evaluate`` returns (its frozen ``Finding``): read-only attributes."""

    @property
    def rule(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def target_type(self) -> str: ...
    @property
    def target_id(self) -> int: ...
    @property
    def message(self) -> str: ...


@dataclass
class FlagCounts:
    raised: int = 0
    cleared: int = 0


@dataclass(frozen=True)
class OpenFlag:
    id: uuid.UUID
    invoice_id: int
    invoice_number: str
    rule: str
    severity: str
    target_type: str
    target_id: int
    message: str
    marked_ok: bool
    marked_ok_by: uuid.UUID | None
    marked_ok_at: dt.datetime | None

    def as_json(self) -> dict:
        return {"invoice_number": self.invoice_number, "invoice_id": self.invoice_id, "rule": self.rule,
                "severity": self.severity, "target_type": self.target_type, "target_id": self.target_id,
                "message": self.message, "marked_ok": self.marked_ok}


def _ref(flag: Flag) -> FieldRef:
    return FieldRef(flag.tenant_id, TABLE, flag.id, "message")


def _identity(rule: str, target_type: str, target_id: int) -> tuple[str, str, int]:
    return rule, target_type, int(target_id)


def apply_findings(session: Session, keyring: Keyring, tenant_id: uuid.UUID, invoice_id: int, invoice_number: str,
                   findings: Sequence[FindingLike], now: dt.datetime) -> FlagCounts:
    """Make the invoice's flags match ``findings``: raise new ones, keep persisting ones, clear fixed ones."""
    counts = FlagCounts()
    rows = {_identity(f.rule, f.target_type, f.target_id): f
            for f in session.execute(select(Flag).where(Flag.invoice_id == invoice_id)).scalars()}
    seen: set[tuple[str, str, int]] = set()
    for finding in findings:
        key = _identity(finding.rule, finding.target_type, finding.target_id)
        if key in seen:
            continue  # one flag per identity, whatever a rule repeats
        seen.add(key)
        severity = finding.severity if finding.severity in SEVERITIES else "warning"
        flag = rows.get(key)
        if flag is None:
            flag = Flag(id=uuid.uuid4(), tenant_id=tenant_id, invoice_id=invoice_id, rule=key[0],
                        target_type=key[1], target_id=key[2], first_seen=now)
            session.add(flag)
            counts.raised += 1
        elif flag.cleared_at is not None:
            # Back after being fixed: a new occurrence, so the old "OK" no longer vouches for it.
            flag.cleared_at, flag.marked_ok_by, flag.marked_ok_at, flag.first_seen = None, None, None, now
            counts.raised += 1
        flag.invoice_number, flag.severity, flag.last_seen = invoice_number[:64], severity, now
        if flag.message_enc is None or keyring.decrypt(flag.message_enc, _ref(flag)) != finding.message:
            flag.message_enc = keyring.encrypt(finding.message, _ref(flag))
    for key, flag in rows.items():
        if key not in seen and flag.cleared_at is None:
            flag.cleared_at = now
            counts.cleared += 1
    return counts


def clear_invoices(session: Session, invoice_ids: Iterable[int], now: dt.datetime) -> int:
    """Clear the open flags of invoices that left review (sent or closed); returns how many."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return 0
    flags = session.execute(select(Flag).where(Flag.invoice_id.in_(ids), Flag.cleared_at.is_(None))).scalars().all()
    for flag in flags:
        flag.cleared_at = now
    return len(flags)


def open_flags(session: Session, keyring: Keyring, invoice_number: str | None = None) -> list[OpenFlag]:
    """The flags not cleared, optionally of one invoice number, ordered by invoice, severity and rule."""
    query = select(Flag).where(Flag.cleared_at.is_(None))
    if invoice_number is not None:
        query = query.where(Flag.invoice_number == invoice_number)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    flags = sorted(session.execute(query).scalars(),
                   key=lambda f: (f.invoice_number, f.invoice_id, rank.get(f.severity, 9), f.rule, f.target_id))
    return [OpenFlag(f.id, f.invoice_id, f.invoice_number, f.rule, f.severity, f.target_type, f.target_id,
                     keyring.decrypt(f.message_enc, _ref(f)), f.marked_ok_at is not None, f.marked_ok_by,
                     f.marked_ok_at) for f in flags]


def mark_ok(session: Session, tenant_id: uuid.UUID | str, flag_id: uuid.UUID, actor: Actor, user_id: uuid.UUID | None,
            *, ok: bool = True, origin: Origin | None = None) -> Flag | None:
    """Mark an open flag OK (or undo it), audited (with the request's ``origin``, when there is one); None when
    there is no such open flag."""
    flag = session.execute(select(Flag).where(Flag.id == flag_id, Flag.cleared_at.is_(None))).scalar_one_or_none()
    if flag is None:
        return None
    if ok:
        flag.marked_ok_by, flag.marked_ok_at = user_id, dt.datetime.now(dt.UTC)
    else:
        flag.marked_ok_by, flag.marked_ok_at = None, None
    record(session, tenant_id, actor, "review.flag_marked_ok" if ok else "review.flag_unmarked", target_type="flag",
           target_id=flag.id, after={"invoice_id": flag.invoice_id, "rule": flag.rule,
                                     "target_type": flag.target_type, "target_id": flag.target_id}, origin=origin)
    summary.refresh_flags(session, [flag.invoice_id])
    return flag
