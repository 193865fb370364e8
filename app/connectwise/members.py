"""Member sync: ConnectWise members become the tenant's users; members who turn inactive lose access.

All of ConnectWise is read first (the client retries within bounds); then the change applies in one
transaction, so a failed sync leaves the previous state untouched.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.log import Actor, record
from app.connectwise.connection import get_connection, make_client
from app.connectwise.errors import ConnectWiseError
from app.connectwise.models import MemberSync
from app.connectwise.payloads import MEMBER_FIELDS, Member
from app.jobs.queue import enqueue
from app.jobs.runtime import job
from app.tenancy import tenant_session
from app.users.models import User

log = logging.getLogger(__name__)
ACTOR = Actor.system("connectwise member sync")
STALE_AFTER = timedelta(minutes=15)  # a sync "running" longer than this died with its worker


@dataclass
class SyncOutcome:
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    kept_owner: bool = False
    deactivated_keys: list[str] = field(default_factory=list)


def sync_state(session: Session, tenant_id: uuid.UUID | str) -> MemberSync:
    state = session.get(MemberSync, uuid.UUID(str(tenant_id)))
    if state is None:
        state = MemberSync(tenant_id=uuid.UUID(str(tenant_id)), status="never", progress=0, created=0, updated=0,
                           deactivated=0)
        session.add(state)
        session.flush()
    return state


def apply_members(session: Session, tenant_id: uuid.UUID | str, members: list[Member]) -> SyncOutcome:
    """Upsert users from ``members`` (matched by member id, then email); deactivate the ones that left."""
    tid = uuid.UUID(str(tenant_id))
    outcome = SyncOutcome()
    users = session.execute(select(User)).scalars().all()
    by_member = {u.cw_member_id: u for u in users if u.cw_member_id is not None}
    by_email = {u.email.lower(): u for u in users}
    seen: set[int] = set()
    for m in members:
        seen.add(m.id)
        user = by_member.get(m.id) or (by_email.get(m.email) if m.email else None)
        if user is None:
            if not m.email or not m.active or m.email in by_email:
                continue  # no way to sign in, or gone already: nothing to create
            user = User(id=uuid.uuid4(), tenant_id=tid, email=m.email, name=m.name, role="viewer", active=True,
                        cw_member_id=m.id, cw_identifier=m.identifier or None)
            session.add(user)
            by_email[m.email] = user
            outcome.created += 1
            continue
        before = {"name": user.name, "email": user.email, "active": user.active}
        user.cw_member_id, user.cw_identifier = m.id, m.identifier or None
        if m.name:
            user.name = m.name
        if m.email and m.email != user.email.lower() and m.email not in by_email:
            user.email = m.email
        user.active = m.active
        after = {"name": user.name, "email": user.email, "active": user.active}
        if before != after:
            outcome.updated += 1
            if before["active"] and not after["active"]:
                outcome.deactivated += 1
                outcome.deactivated_keys.append(user.get_id())
    for user in users:
        if user.cw_member_id is not None and user.cw_member_id not in seen and user.active:
            user.active = False  # removed from ConnectWise
            outcome.deactivated += 1
            outcome.deactivated_keys.append(user.get_id())
            outcome.updated += 1
    outcome.kept_owner = _keep_an_active_owner(session, users)
    still_inactive = {u.get_id() for u in users if not u.active}
    outcome.deactivated_keys = [k for k in outcome.deactivated_keys if k in still_inactive]
    session.flush()
    return outcome


def _keep_an_active_owner(session: Session, users: list[User]) -> bool:
    """A sync never locks a tenant out: if every owner went inactive, the longest-standing one stays."""
    owners = [u for u in users if u.role == "owner"]
    if not owners or any(u.active for u in owners):
        return False
    keep = min(owners, key=lambda u: u.created_at or datetime.now(UTC))
    keep.active = True
    return True


def run_sync(tenant_id: str) -> SyncOutcome:
    """Fetch every member, then apply in one transaction; record progress and the outcome on the sync row."""
    factory = current_app.extensions["session_factory"]
    config = current_app.config["BI"]
    with tenant_session(tenant_id, factory) as session:
        state = sync_state(session, tenant_id)
        state.status, state.started_at, state.progress, state.error = "running", datetime.now(UTC), 0, None
        conn = get_connection(session)
        if conn is None:
            state.status, state.error, state.finished_at = "failed", "ConnectWise is not connected", datetime.now(UTC)
            return SyncOutcome()
        client = make_client(conn, current_app.extensions["keyring"], config, current_app.extensions["redis"])
    try:
        with client:
            # Never from the cache: a sync must see who turned inactive a moment ago.
            raw = client.get_all("system/members", fields=MEMBER_FIELDS, cache=False,
                                 on_page=lambda n: _progress(factory, tenant_id, n))
        members = [m for m in (Member.from_api(r) for r in raw) if m is not None]
        with tenant_session(tenant_id, factory) as session:
            outcome = apply_members(session, tenant_id, members)
            state = sync_state(session, tenant_id)
            state.status, state.finished_at = "ok", datetime.now(UTC)
            state.created, state.updated, state.deactivated = outcome.created, outcome.updated, outcome.deactivated
            state.progress = len(members)
            state.error = ("Every owner is inactive in ConnectWise; one stays active so the account is not locked"
                           if outcome.kept_owner else None)
            if outcome.created or outcome.updated or outcome.kept_owner:  # a sync that changed nothing is no event
                record(session, tenant_id, ACTOR, "connectwise.members_synced", target_type="users",
                       after={"members": len(members), "created": outcome.created, "updated": outcome.updated,
                              "deactivated": outcome.deactivated})
        from app.auth.server_sessions import end_user_sessions

        for key in outcome.deactivated_keys:  # an inactive member's sessions end with the sync, not at next use
            end_user_sessions(current_app.extensions["redis"], key)
        log.info("member sync: %d members, %d created, %d updated, %d deactivated", len(members),
                 outcome.created, outcome.updated, outcome.deactivated, extra={"event": "connectwise.member_sync"})
        return outcome
    except ConnectWiseError as exc:
        _fail(factory, tenant_id, str(exc))
        raise
    except Exception:
        _fail(factory, tenant_id, "The sync failed unexpectedly; we have been told. Try again in a few minutes.")
        raise


def _progress(factory, tenant_id: str, fetched: int) -> None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, factory) as session:
        sync_state(session, tenant_id).progress = fetched


def _fail(factory, tenant_id: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, factory) as session:
        state = sync_state(session, tenant_id)
        state.status, state.error, state.finished_at = "failed", message, datetime.now(UTC)


@job
def sync_members_job(tenant_id: str) -> dict:
    outcome = run_sync(tenant_id)
    return {"created": outcome.created, "updated": outcome.updated, "deactivated": outcome.deactivated}


def request_sync(session: Session, redis, tenant_id: uuid.UUID | str) -> MemberSync:  # type: ignore[no-untyped-def]
    """Queue a sync unless one is already queued or running; the page polls the sync row."""
    state = sync_state(session, tenant_id)
    stale = state.started_at is not None and datetime.now(UTC) - state.started_at > STALE_AFTER
    if state.status in ("queued", "running") and state.job_id and not stale:
        return state
    queued = enqueue(redis, sync_members_job, str(tenant_id), queue="connectwise", job_timeout=600,
                     failure_ttl=7 * 86400)
    state.status, state.job_id, state.error, state.progress = "queued", queued.id, None, 0
    return state


@job
def sync_all_tenants() -> int:
    """The periodic fan-out: one queued sync per tenant that has a connection."""
    from sqlalchemy import text

    factory = current_app.extensions["session_factory"]
    session = factory()
    try:
        tenant_ids = [str(t) for t in session.execute(text("select * from bi_tenant_ids()")).scalars()]
    finally:
        session.close()
    queued = 0
    for tid in tenant_ids:
        with tenant_session(tid, factory) as s:
            if get_connection(s) is not None:
                request_sync(s, current_app.extensions["redis"], tid)
                queued += 1
    return queued


def active_user_count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(User).where(User.active.is_(True))).scalar_one()
