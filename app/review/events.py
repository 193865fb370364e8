"""The activity timeline's own entries: one ``Event`` per thing that happened to an invoice's review.

Every decision, status change, reviewer change, flag dismissal, write-back outcome, comment and edit adds one here
(alongside its audit row, which is the security record; this is the reviewers' view). Details are encrypted
JSON bound to tenant, table, row and field, as snapshots are.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.review.models import EVENT_KINDS, Event
from app.security.crypto import FieldRef, Keyring

TABLE = Event.__tablename__


@dataclass(frozen=True)
class EventActor:
    """Who did it, as the timeline names them: a user, a guest, a ConnectWise member, or the system."""

    type: str  # user | guest | member | system
    id: str | None
    name: str

    @classmethod
    def system(cls, name: str = "Better Invoice") -> EventActor:
        return cls("system", None, name)

    @classmethod
    def for_user(cls, user: Any) -> EventActor:
        """A signed-in user (or support staff through a grant, who have an ``audit_actor`` and no row), or a guest of
        a guest link (``app.review.guests.Guest``)."""
        guest = getattr(user, "event_actor", None)  # part 3: guests name themselves "<name> (guest, <email>)"
        if isinstance(guest, EventActor):
            return guest
        audit_actor = getattr(user, "audit_actor", None)
        if audit_actor is not None:
            return cls("user", None, f"{audit_actor.label} (support)")
        name = (getattr(user, "name", "") or "").strip() or getattr(user, "email", "") or "Someone"
        return cls("user", str(user.id), name)


@dataclass(frozen=True)
class TimelineEntry:
    id: uuid.UUID
    invoice_id: int
    at: dt.datetime
    kind: str
    actor: EventActor
    detail: dict[str, Any]


def _ref(event: Event) -> FieldRef:
    return FieldRef(event.tenant_id, TABLE, event.id, "detail")


def add(session: Session, keyring: Keyring, tenant_id: uuid.UUID | str, invoice_id: int, kind: str,
        actor: EventActor, detail: Mapping[str, Any] | None = None, at: dt.datetime | None = None) -> Event:
    """Append one entry to the invoice's timeline."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown review event kind {kind!r}")
    event = Event(id=uuid.uuid4(), tenant_id=uuid.UUID(str(tenant_id)), invoice_id=invoice_id,
                  at=at or dt.datetime.now(dt.UTC), kind=kind, actor_type=actor.type, actor_id=actor.id,
                  actor_name=actor.name[:200])
    if detail:
        event.detail_enc = keyring.encrypt(json.dumps(dict(detail), default=str), _ref(event))
    session.add(event)
    return event


def of_invoice(session: Session, keyring: Keyring, invoice_id: int) -> list[TimelineEntry]:
    """The invoice's own entries, oldest first."""
    rows = session.execute(select(Event).where(Event.invoice_id == invoice_id).order_by(Event.at, Event.id)).scalars()
    entries = []
    for e in rows:
        detail = json.loads(keyring.decrypt(e.detail_enc, _ref(e))) if e.detail_enc is not None else {}
        entries.append(TimelineEntry(e.id, e.invoice_id, e.at, e.kind, EventActor(e.actor_type, e.actor_id,
                                                                                   e.actor_name), detail))
    return entries
