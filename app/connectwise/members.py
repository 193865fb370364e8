"""Member sync: ConnectWise members become the tenant's users; members who turn inactive lose access.

All of ConnectWise is read first (the client retries within bounds); then the change applies in one
transaction, so a failed sync leaves the previous state untouched. Whoever controls the ConnectWise data must not
be able to take an account through it: a sync never changes an existing user's email (it proposes the change, see
``app.users.email_changes``), never touches an owner's or admin's row, and never undoes a deactivation made in the
app. New members arrive listed without sign-in access (``no_access``) unless the owner chose a default role for them
(never a privileged one). Each user it creates, changes or proposes a change for gets its own audit row.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import column, func, select, table, update
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, changes, record
from app.connectwise.connection import get_connection
from app.connectwise.errors import ConnectWiseError
from app.connectwise.models import MemberSync
from app.connectwise.records import MEMBER_FIELDS, Member
from app.connectwise.tenant_client import tenant_client
from app.jobs.fanout import fan_out
from app.jobs.queue import enqueue
from app.jobs.runtime import job
from app.security.server_sessions import end_user_sessions
from app.services import Services
from app.tenancy import tenant_session
from app.users.email_changes import proposals_by_user, reconcile, withdraw
from app.users.models import PRIVILEGED_ROLES, User
from app.users.service import seats_used

log = logging.getLogger(__name__)
ACTOR = Actor.system("connectwise member sync")
STALE_AFTER = timedelta(minutes=15)  # a sync "running" longer than this died with its worker
NO_ACCESS = "no_access"
# The roles an owner may pick for new members: never a privileged one (ConnectWise data must not hand out the
# account's keys), so never owner or admin even though the column's CHECK would take admin.
DEFAULT_ROLES = ("billing_manager", "reviewer", "viewer")
# tenant_settings as a bare table: its model lives in ``tenants``, above this package; RLS keeps it to the tenant.
_SETTINGS = table("tenant_settings", column("tenant_id"), column("new_member_role"))


class DefaultRoleError(ValueError):
    """A default role for new members that may not be chosen; the message says why."""


def new_member_role(session: Session) -> str:
    """The role a sync gives a new member: the owner's choice if it is still allowed, else ``no_access``."""
    chosen = session.execute(select(_SETTINGS.c.new_member_role)).scalar()
    return chosen if chosen in DEFAULT_ROLES else NO_ACCESS


def set_new_member_role(session: Session, tenant_id: uuid.UUID | str, role: str | None, *, actor: Actor,
                        origin: Origin | None = None) -> bool:
    """Choose the role new members get (None or "no_access": none); audited with before and after. Whether it
    changed."""
    role = None if role in (None, "", NO_ACCESS) else role
    if role is not None and role not in DEFAULT_ROLES:
        raise DefaultRoleError("New members can start as billing manager, reviewer, viewer or with no access; "
                               "owner and admin are given by hand only.")
    before = new_member_role(session)
    after = role or NO_ACCESS
    if before == after:
        return False
    tid = uuid.UUID(str(tenant_id))
    session.execute(update(_SETTINGS).where(_SETTINGS.c.tenant_id == tid).values(new_member_role=role))
    record(session, tid, actor, "tenant.new_member_role_changed", target_type="tenant_settings", target_id=tid,
           before={"new_member_role": before}, after={"new_member_role": after}, origin=origin)
    return True


@dataclass
class SyncOutcome:
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    proposed: int = 0
    no_seat: int = 0  # new members who arrived with no access because the plan's seats were taken
    deactivated_keys: list[str] = field(default_factory=list)


def sync_state(session: Session, tenant_id: uuid.UUID | str) -> MemberSync:
    state = session.get(MemberSync, uuid.UUID(str(tenant_id)))
    if state is None:
        state = MemberSync(tenant_id=uuid.UUID(str(tenant_id)), status="never", progress=0, created=0, updated=0,
                           deactivated=0)
        session.add(state)
        session.flush()
    return state


def apply_members(session: Session, tenant_id: uuid.UUID | str, members: list[Member],
                  seat_limit: int | None = None) -> SyncOutcome:
    """Create, link, rename and (de)activate users from ``members``; never an email, never an owner or admin.

    A new member would get the default role only while the plan has a seat for them (``seat_limit``, from the
    sync's caller: billing sits above us); beyond it they arrive as ``no_access``, noted in their audit row."""
    tid = uuid.UUID(str(tenant_id))
    outcome = SyncOutcome()
    seats = seats_used(session) if seat_limit is not None else 0
    users = session.execute(select(User)).scalars().all()
    proposals = proposals_by_user(session)
    by_member = {u.cw_member_id: u for u in users if u.cw_member_id is not None}
    by_email = {u.email.lower(): u for u in users}
    role = new_member_role(session)
    seen: set[int] = set()
    for m in members:
        seen.add(m.id)
        user = by_member.get(m.id) or _match_by_email(by_email, m)
        if user is None:
            if not m.email or not m.active or m.email in by_email:
                continue  # no way to sign in, gone already, or the address is someone else's: nothing to create
            given, note = role, None
            if role != NO_ACCESS and seat_limit is not None:
                if seats >= seat_limit:
                    given, note = NO_ACCESS, f"no access: the plan's {seat_limit} seats are taken"
                    outcome.no_seat += 1
                else:
                    seats += 1
            user = User(id=uuid.uuid4(), tenant_id=tid, email=m.email, name=m.name, role=given, active=True,
                        cw_member_id=m.id, cw_identifier=m.identifier or None)
            session.add(user)
            session.flush()
            by_email[m.email] = user
            outcome.created += 1
            after = {"email": user.email, "name": user.name, "role": user.role, "cw_member_id": m.id}
            record(session, tid, ACTOR, "connectwise.member_created", target_type="user", target_id=user.id,
                   after={**after, "note": note} if note else after)
            continue
        if user.role in PRIVILEGED_ROLES:
            # Not its name, email, active flag or member link: ConnectWise data must not reach the account's keys.
            if user.id in proposals:
                withdraw(session, ACTOR, user, proposals.pop(user.id))
            continue
        before = _snapshot(user)
        user.cw_member_id, user.cw_identifier = m.id, m.identifier or None
        if m.name:
            user.name = m.name
        if not m.active and user.active:
            user.active, user.deactivation_source = False, "sync"
        elif m.active and not user.active and user.deactivation_source == "sync":
            user.active, user.deactivation_source = True, None  # only ever undo our own deactivation
        _audit_change(session, tid, user, before, outcome)
        if reconcile(session, ACTOR, user, m.id, m.email, proposals.get(user.id)) == "proposed":
            outcome.proposed += 1
    for user in users:
        if user.cw_member_id is None or user.cw_member_id in seen or user.role in PRIVILEGED_ROLES:
            continue
        if user.active:  # removed from ConnectWise
            before = _snapshot(user)
            user.active, user.deactivation_source = False, "sync"
            _audit_change(session, tid, user, before, outcome)
        if user.id in proposals:
            withdraw(session, ACTOR, user, proposals.pop(user.id))
    session.flush()
    return outcome


def _match_by_email(by_email: dict[str, User], m: Member) -> User | None:
    """An existing user a member with no linked user yet may take over, by the same email.

    Never an owner or admin: once linked, every later sync would speak for that row, so a member whose email an
    attacker set to the owner's would become the owner's record. Never a user already linked to another member
    either (two members with one email would otherwise trade the same user back and forth). Such a member gets no
    user at all, as the address is taken. Linking anyone else is safe enough: the most a member can then do to
    that user is rename or deactivate them, or propose an email that an owner or admin must accept.
    """
    user = by_email.get(m.email) if m.email else None
    if user is None or user.cw_member_id is not None or user.role in PRIVILEGED_ROLES:
        return None
    return user


def _snapshot(user: User) -> dict:
    return {"name": user.name, "active": user.active, "cw_member_id": user.cw_member_id}


def _audit_change(session: Session, tid: uuid.UUID, user: User, before: dict, outcome: SyncOutcome) -> None:
    """One audit row for the user when this sync changed them, named by the change that matters most."""
    old, new = changes(before, _snapshot(user))
    if not new:
        return
    outcome.updated += 1
    if "active" in new and not new["active"]:
        action = "connectwise.member_deactivated"
        outcome.deactivated += 1
        outcome.deactivated_keys.append(user.get_id())
    elif "active" in new:
        action = "connectwise.member_reactivated"
    else:
        action = "connectwise.member_updated"
    record(session, tid, ACTOR, action, target_type="user", target_id=user.id, before=old, after=new)


def sync_members(services: Services, tenant_id: str, seat_limit: int | None = None) -> SyncOutcome:
    """Fetch every member, then apply in one transaction; record progress and the outcome on the sync row.
    ``seat_limit``: the plan's, from the caller (None: unlimited)."""
    factory = services.session_factory
    with tenant_session(tenant_id, factory) as session:
        state = sync_state(session, tenant_id)
        state.status, state.started_at, state.progress, state.error = "running", datetime.now(UTC), 0, None
        if get_connection(session) is None:
            state.status, state.error, state.finished_at = "failed", "ConnectWise is not connected", datetime.now(UTC)
            return SyncOutcome()
    try:
        with tenant_session(tenant_id, factory) as session:
            # A job's client (it may wait for the tenant's ConnectWise budget), with the shared API-base cache.
            client = tenant_client(session, services.keyring, services.config, services.redis, for_page=False)
        with client:
            # Never from the cache: a sync must see who turned inactive a moment ago.
            raw = client.get_all("system/members", fields=MEMBER_FIELDS, cache=False,
                                 on_page=lambda n: _progress(factory, tenant_id, n))
        members = [m for m in (Member.from_api(r) for r in raw) if m is not None]
        with tenant_session(tenant_id, factory) as session:
            outcome = apply_members(session, tenant_id, members, seat_limit)
            state = sync_state(session, tenant_id)
            state.status, state.finished_at = "ok", datetime.now(UTC)
            state.created, state.updated, state.deactivated = outcome.created, outcome.updated, outcome.deactivated
            state.progress = len(members)
            state.error = None
            if outcome.created or outcome.updated or outcome.proposed:  # a sync that changed nothing is no event
                record(session, tenant_id, ACTOR, "connectwise.members_synced", target_type="users",
                       after={"members": len(members), "created": outcome.created, "updated": outcome.updated,
                              "deactivated": outcome.deactivated, "proposed": outcome.proposed,
                              **({"no_seat": outcome.no_seat} if outcome.no_seat else {})})
        for key in outcome.deactivated_keys:  # an inactive member's sessions end with the sync, not at next use
            end_user_sessions(services.redis, key)
        log.info("member sync: %d members, %d created, %d updated, %d deactivated", len(members),
                 outcome.created, outcome.updated, outcome.deactivated, extra={"event": "connectwise.member_sync"})
        return outcome
    except ConnectWiseError as exc:
        _fail(factory, tenant_id, str(exc))
        raise
    except Exception:
        _fail(factory, tenant_id, "The sync failed unexpectedly; we have been told. Try again in a few minutes.")
        raise


def _progress(factory, tenant_id: str, fetched: int) -> None:
    with tenant_session(tenant_id, factory) as session:
        sync_state(session, tenant_id).progress = fetched


def _fail(factory, tenant_id: str, message: str) -> None:
    with tenant_session(tenant_id, factory) as session:
        state = sync_state(session, tenant_id)
        state.status, state.error, state.finished_at = "failed", message, datetime.now(UTC)


@job
def run_sync(services: Services, tenant_id: str, seat_limit: int | None = None) -> SyncOutcome:
    """A sync now, as the worker runs it (the app's services, the job's log context), returning its outcome."""
    return sync_members(services, tenant_id, seat_limit)


@job
def sync_members_job(services: Services, tenant_id: str, seat_limit: int | None = None) -> dict:
    outcome = sync_members(services, tenant_id, seat_limit)
    return {"created": outcome.created, "updated": outcome.updated, "deactivated": outcome.deactivated,
            "no_seat": outcome.no_seat}


def request_sync(session: Session, redis, tenant_id: uuid.UUID | str, seat_limit: int | None = None) -> MemberSync:
    """Queue a sync unless one is already queued or running; the page polls the sync row. ``seat_limit`` is the
    plan's when queued (the caller's: billing sits above us)."""
    state = sync_state(session, tenant_id)
    stale = state.started_at is not None and datetime.now(UTC) - state.started_at > STALE_AFTER
    if state.status in ("queued", "running") and state.job_id and not stale:
        return state
    limit = () if seat_limit is None else (seat_limit,)  # a job's arguments are ids: no None
    queued = enqueue(redis, sync_members_job, str(tenant_id), *limit, queue="connectwise", job_timeout=600,
                     failure_ttl=7 * 86400)
    state.status, state.job_id, state.error, state.progress = "queued", queued.id, None, 0
    return state


SeatLimitOf = Callable[[Session], int | None]  # the tenant's seat limit, read in its session (billing's)


@job
def sync_all_tenants(services: Services, seat_limit_of: SeatLimitOf | None = None) -> int:
    """The periodic fan-out: one queued sync per tenant that has a connection, with the tenant's seat limit as
    ``seat_limit_of`` reads it (the schedule runs ``app.billing.jobs``'s fan-out, which passes billing's)."""
    redis = services.redis

    def queue_sync(session: Session, tenant_id: str) -> bool:
        if get_connection(session) is None:
            return False
        request_sync(session, redis, tenant_id, seat_limit_of(session) if seat_limit_of is not None else None)
        return True

    return fan_out(queue_sync, services.session_factory)


def active_user_count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(User).where(User.active.is_(True))).scalar_one()
