"""An invoice's reviewers: seeded once from its ConnectWise invoice routing (``app.review.routing``), then managed
here (we are the source of truth: a reviewer removed here is never re-added), and their states (waiting, viewed,
approved, rejected).

A reviewer is a user of the workspace, or a ConnectWise member who has no user yet (a "member-only" reviewer, kept
by member id and name), or both. A member-only reviewer who later signs in as the user linked to that member
(``users.cw_member_id``) is the same reviewer: ``reviewer_of`` finds them by member and links the user.

Adding and removing are each an audit row and a timeline event ("added X as reviewer", "removed X"; the event's
detail is ``{"name": X}``). Opening the page turns a waiting reviewer into "Viewed · time", with one "viewed" event
per reviewer per content change at most (``ReviewInvoice.changed_at``), however often the page is reloaded.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.review import events
from app.review.events import EventActor
from app.review.models import Reviewer, ReviewInvoice
from app.review.times import when, zone
from app.security.crypto import Keyring
from app.services import Services
from app.tenants.models import TenantSettings
from app.users.models import User

STATES = ("waiting", "viewed", "approved", "rejected")
PHRASES = {"waiting": "Waiting for review", "viewed": "Viewed", "approved": "Approved", "rejected": "Rejected"}
CANDIDATES_LISTED = 20  # people offered by the picker at once; typing narrows them


class ReviewerError(ValueError):
    """A reviewer change that cannot be made, with the sentence to show beside the form."""


@dataclass(frozen=True)
class ReviewerEntry:
    """One reviewer as the panel shows them."""

    id: uuid.UUID
    name: str
    initials: str
    state: str
    phrase: str  # "Waiting for review", "Viewed · Today 14:32", "Approved · 3 Nov"
    at: dt.datetime | None
    user_id: uuid.UUID | None
    member_id: int | None
    source: str
    is_me: bool


@dataclass(frozen=True)
class Avatar:
    """A reviewer as an inbox row shows them: initials, and the name and state as the tooltip."""

    initials: str
    name: str
    state: str
    label: str  # "Jordan Morales · Approved · 3 Nov"


@dataclass(frozen=True)
class Candidate:
    """A person the picker offers: a user ("user:<uuid>") or a member-only person ("member:<id>")."""

    key: str
    name: str
    detail: str  # the email, or "ConnectWise member"
    role: str | None  # a user's role; None for a member-only person


def initials(name: str) -> str:
    """"Jordan Morales" -> "JM", "jordan" -> "J", "" -> "?"."""
    words = [w for w in name.replace("@", " ").replace(".", " ").split() if w[:1].isalnum()]
    if not words:
        return "?"
    picked = [words[0], words[-1]] if len(words) > 1 else [words[0]]
    return "".join(w[0] for w in picked).upper()


def phrase(state: str, at: dt.datetime | None, tz: dt.tzinfo = dt.UTC, now: dt.datetime | None = None) -> str:
    """The state as the reviewer list says it: "Waiting for review", or "Viewed · Today 14:32" and so on."""
    label = PHRASES.get(state, state)
    if state == "waiting" or at is None:
        return label
    return f"{label} · {when(at, tz, now)}"


def tenant_zone(session: Session, tenant_id: uuid.UUID | str) -> dt.tzinfo:
    settings = session.get(TenantSettings, uuid.UUID(str(tenant_id)))
    return zone(settings.timezone if settings is not None else None)


def user_name(user: Any) -> str:
    return (getattr(user, "name", "") or "").strip() or getattr(user, "email", "") or "Someone"


def _row_id(user: Any) -> uuid.UUID | None:
    """The user's row id; None for support staff through a grant, who have no row and are nobody's reviewer."""
    if user is None or getattr(user, "audit_actor", None) is not None:
        return None
    value = getattr(user, "id", None)
    return value if isinstance(value, uuid.UUID) else (uuid.UUID(str(value)) if value else None)


def in_review(session: Session, invoice_id: int) -> ReviewInvoice | None:
    return session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == invoice_id)).scalar_one_or_none()


def reviewers_of(session: Session, invoice_id: int) -> list[Reviewer]:
    """The invoice's reviewers in the order they were added (routing order first, as ConnectWise listed them)."""
    return list(session.execute(select(Reviewer).where(Reviewer.invoice_id == invoice_id)
                                .order_by(Reviewer.added_at, Reviewer.name, Reviewer.id)).scalars())


def reviewer_of(session: Session, invoice_id: int, user: Any, *, lock: bool = False) -> Reviewer | None:
    """The user's own reviewer row on this invoice: by user, or by the ConnectWise member linked to the user (a
    member-only reviewer who has since signed in, whose row then takes the user's id)."""
    user_id = _row_id(user)
    if user_id is None:
        return None
    member_id = getattr(user, "cw_member_id", None)
    match = Reviewer.user_id == user_id
    if member_id is not None:
        match = or_(match, and_(Reviewer.member_id == member_id, Reviewer.user_id.is_(None)))
    query = select(Reviewer).where(Reviewer.invoice_id == invoice_id, match).order_by(Reviewer.user_id.is_(None))
    if lock:
        query = query.with_for_update()
    row = session.execute(query).scalars().first()
    if row is not None and row.user_id is None:
        row.user_id = user_id
    return row


def entries(session: Session, invoice_id: int, tz: dt.tzinfo = dt.UTC, me: Any = None,
            now: dt.datetime | None = None) -> list[ReviewerEntry]:
    my_id, my_member = _row_id(me), getattr(me, "cw_member_id", None)
    out = []
    for r in reviewers_of(session, invoice_id):
        mine = my_id is not None and (r.user_id == my_id or (r.user_id is None and my_member is not None
                                                             and r.member_id == my_member))
        out.append(ReviewerEntry(r.id, r.name, initials(r.name), r.state, phrase(r.state, r.state_at, tz, now),
                                 r.state_at, r.user_id, r.member_id, r.source, mine))
    return out


def panel(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any) -> dict[str, Any]:
    """What ``review/_reviewers.html`` shows for this invoice to this user.

    Whether the user may add and remove is the template's ``can('manage_reviewers')`` (the permission matrix
    lives in ``app.auth``, above this package); the routes check it again."""
    tz = tenant_zone(session, tenant_id)
    return {"invoice_id": invoice_id, "reviewers": entries(session, invoice_id, tz, user),
            "in_review": in_review(session, invoice_id) is not None, "error": None, "notice": None}


def mark_viewed(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any) -> None:
    """The user opened the review page: a waiting reviewer becomes "Viewed · time" (an event once per view)."""
    row = reviewer_of(session, invoice_id, user, lock=True)  # locked: two reloads at once make one event
    if row is None or row.state not in ("waiting", "viewed"):
        return
    changed_at = session.execute(select(ReviewInvoice.changed_at).where(ReviewInvoice.invoice_id == invoice_id)
                                 ).scalar_one_or_none()
    if row.state == "viewed" and row.state_at is not None and (changed_at is None or row.state_at >= changed_at):
        return  # this content has been seen already
    now = dt.datetime.now(dt.UTC)
    row.state, row.state_at = "viewed", now
    events.add(session, services.keyring, tenant_id, invoice_id, "viewed", EventActor.for_user(user), at=now)


def avatars_for(session: Session, invoice_ids: Iterable[int], tz: dt.tzinfo = dt.UTC) -> dict[int, list[Avatar]]:
    """Each invoice's reviewers for the inbox rows (one query); invoices without reviewers are absent."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return {}
    rows = session.execute(select(Reviewer.invoice_id, Reviewer.name, Reviewer.state, Reviewer.state_at)
                           .where(Reviewer.invoice_id.in_(ids))
                           .order_by(Reviewer.invoice_id, Reviewer.added_at, Reviewer.name, Reviewer.id)).tuples()
    out: dict[int, list[Avatar]] = {}
    for invoice_id, name, state, state_at in rows:
        out.setdefault(invoice_id, []).append(Avatar(initials(name), name, state,
                                                     f"{name} · {phrase(state, state_at, tz)}"))
    return out


def _like(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def candidates(session: Session, invoice_id: int, query: str = "", limit: int = CANDIDATES_LISTED
               ) -> list[Candidate]:
    """People the picker offers for this invoice, matching ``query`` (name or email, any part, any case): active
    users (those member sync made for ConnectWise members who have not signed in yet included), then member-only
    people already known from other invoices' routing; never anyone already a reviewer here."""
    current = reviewers_of(session, invoice_id)
    taken_users = {r.user_id for r in current if r.user_id is not None}
    taken_members = {r.member_id for r in current if r.member_id is not None}
    q = query.strip().lstrip("@").strip()[:100]
    users_q = select(User).where(User.active.is_(True))
    if q:
        users_q = users_q.where(or_(User.name.ilike(_like(q), escape="\\"), User.email.ilike(_like(q), escape="\\")))
    found: list[Candidate] = []
    linked_members: set[int] = set()
    for u in session.execute(users_q.order_by(User.name, User.email).limit(limit + len(taken_users))).scalars():
        if u.cw_member_id is not None:
            linked_members.add(u.cw_member_id)
        if u.id in taken_users or (u.cw_member_id is not None and u.cw_member_id in taken_members):
            continue
        found.append(Candidate(f"user:{u.id}", user_name(u), u.email, u.role))
    if len(found) >= limit:
        return found[:limit]
    members_q = (select(Reviewer.member_id, Reviewer.name).where(Reviewer.user_id.is_(None),
                                                                  Reviewer.member_id.is_not(None))
                 .distinct().order_by(Reviewer.name, Reviewer.member_id))
    if q:
        members_q = members_q.where(Reviewer.name.ilike(_like(q), escape="\\"))
    known = session.execute(members_q.limit(4 * limit)).tuples().all()
    # A member some user is linked to (one the name filter may have left out) is offered as that user instead.
    if known:
        linked_members |= {m for m in session.execute(select(User.cw_member_id).where(
            User.cw_member_id.in_({m for m, _ in known}))).scalars() if m is not None}
    seen: set[int] = set()
    for member_id, name in known:
        if member_id is None or member_id in seen or member_id in taken_members or member_id in linked_members:
            continue
        seen.add(member_id)
        found.append(Candidate(f"member:{member_id}", name, "ConnectWise member", None))
        if len(found) >= limit:
            break
    return found


def _person(session: Session, who: str) -> tuple[uuid.UUID | None, int | None, str]:
    """(user id, member id, name) for a picker value; ReviewerError when it names nobody we know."""
    kind, _, ref = (who or "").partition(":")
    if kind == "user":
        try:
            user_id = uuid.UUID(ref)
        except ValueError:
            raise ReviewerError("Pick a person from the list.") from None
        user = session.get(User, user_id)
        if user is None or not user.active:
            raise ReviewerError("That person is not an active user of this workspace.")
        return user.id, user.cw_member_id, user_name(user)
    if kind == "member" and ref.isdigit() and len(ref) <= 9:
        member_id = int(ref)
        user = session.execute(select(User).where(User.cw_member_id == member_id)).scalar_one_or_none()
        if user is not None:
            if not user.active:
                raise ReviewerError("That person is not an active user of this workspace.")
            return user.id, member_id, user_name(user)
        name = session.execute(select(Reviewer.name).where(Reviewer.member_id == member_id).limit(1)).scalar()
        if name is None:
            raise ReviewerError("That ConnectWise member is not known here yet.")
        return None, member_id, name
    raise ReviewerError("Pick a person from the list.")


def add(session: Session, keyring: Keyring, tenant_id: uuid.UUID | str, invoice_id: int, who: str, *, by: Any,
        actor: Actor, origin: Origin | None = None) -> Reviewer:
    """Add a reviewer by picker value (``user:<uuid>`` or ``member:<id>``), waiting for review; audited and on the
    timeline. ReviewerError when the invoice is not in review, the person is unknown, or already a reviewer."""
    tid = uuid.UUID(str(tenant_id))
    if in_review(session, invoice_id) is None:
        raise ReviewerError("This invoice is not in review.")
    user_id, member_id, name = _person(session, who)
    clash = [Reviewer.user_id == user_id] if user_id is not None else []
    if member_id is not None:
        clash.append(Reviewer.member_id == member_id)
    if session.execute(select(Reviewer.id).where(Reviewer.invoice_id == invoice_id, or_(*clash))).first():
        raise ReviewerError(f"{name} is already a reviewer of this invoice.")
    row = Reviewer(id=uuid.uuid4(), tenant_id=tid, invoice_id=invoice_id, user_id=user_id, member_id=member_id,
                   name=name[:200], state="waiting", source="manual", added_by=_row_id(by),
                   added_at=dt.datetime.now(dt.UTC))
    session.add(row)
    session.flush()
    record(session, tid, actor, "review.reviewer_added", target_type="invoice", target_id=invoice_id,
           after={"reviewer_id": str(row.id), "name": row.name, "user_id": str(user_id) if user_id else None,
                  "member_id": member_id}, origin=origin)
    events.add(session, keyring, tid, invoice_id, "reviewer_added", EventActor.for_user(by), {"name": row.name})
    return row


def remove(session: Session, keyring: Keyring, tenant_id: uuid.UUID | str, invoice_id: int, reviewer_id: uuid.UUID, *,
           by: Any, actor: Actor, origin: Origin | None = None) -> str:
    """Remove a reviewer (for good: later sweeps never re-add them); audited and on the timeline. Returns the name;
    ReviewerError when no such reviewer is on this invoice (already removed)."""
    tid = uuid.UUID(str(tenant_id))
    row = session.execute(select(Reviewer).where(Reviewer.id == reviewer_id, Reviewer.invoice_id == invoice_id)
                          .with_for_update()).scalar_one_or_none()
    if row is None:
        raise ReviewerError("That reviewer has already been removed.")
    before = {"reviewer_id": str(row.id), "name": row.name, "state": row.state, "source": row.source,
              "user_id": str(row.user_id) if row.user_id else None, "member_id": row.member_id}
    name = row.name
    session.delete(row)
    session.flush()
    record(session, tid, actor, "review.reviewer_removed", target_type="invoice", target_id=invoice_id,
           before=before, origin=origin)
    events.add(session, keyring, tid, invoice_id, "reviewer_removed", EventActor.for_user(by), {"name": name})
    return name


@dataclass(frozen=True)
class Routed:
    """One person an invoice's routing names, resolved: a user (with the member linked), or a member-only person."""

    member_id: int
    user_id: uuid.UUID | None
    name: str


def seed(session: Session, keyring: Keyring, tenant_id: uuid.UUID, invoice_id: int, people: Sequence[Routed],
         now: dt.datetime, current: Sequence[Reviewer] | None = None) -> list[str]:
    """The routing's people become the invoice's reviewers (in routing order, each waiting), beside anyone added
    by hand before the routing was read (``current``, read here unless given); returns the names added. The
    caller marks the invoice seeded, and audits, in the same transaction."""
    if current is None:
        current = reviewers_of(session, invoice_id)
    taken_users = {r.user_id for r in current if r.user_id is not None}
    taken_members = {r.member_id for r in current if r.member_id is not None}
    added: list[str] = []
    for position, person in enumerate(people):
        if person.member_id in taken_members or (person.user_id is not None and person.user_id in taken_users):
            continue
        taken_members.add(person.member_id)
        if person.user_id is not None:
            taken_users.add(person.user_id)
        # Microseconds apart: one timestamp for all would lose ConnectWise's routing order in the list and timeline.
        at = now + dt.timedelta(microseconds=position)
        session.add(Reviewer(id=uuid.uuid4(), tenant_id=tenant_id, invoice_id=invoice_id, user_id=person.user_id,
                             member_id=person.member_id, name=person.name[:200], state="waiting", source="routing",
                             added_at=at))
        events.add(session, keyring, tenant_id, invoice_id, "reviewer_added", EventActor.system("ConnectWise routing"),
                   {"name": person.name[:200], "source": "routing"}, at=at)
        added.append(person.name[:200])
    return added
