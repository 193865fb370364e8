"""Support grants: request, approve or deny, open, expire; and the signed-in support user they produce.

A grant gives one staff member one tenant for at most 60 minutes. It ends on its own: the principal loader refuses an
expired grant at once, and a job scheduled for the expiry time writes the "expired" row to the tenant's audit log
(the loader writes it too if it notices first; the row is written once).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask_login import UserMixin
from redis import Redis
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.jobs.queue import enqueue
from app.jobs.runtime import job
from app.services import Services
from app.support.models import MAX_MINUTES, MIN_MINUTES, SupportGrant
from app.tenancy import tenant_session
from app.tenants.models import TenantSettings


class SupportError(ValueError):
    """A request that cannot be granted; the message is for the person who asked."""


def staff_actor(email: str, grant_id: uuid.UUID | str | None = None) -> Actor:
    return Actor("support", str(grant_id) if grant_id else None, email)


@dataclass(eq=False)
class SupportUser(UserMixin):
    """A staff member inside a tenant through a live grant (not a row in ``users``)."""

    tenant_id: uuid.UUID
    grant_id: uuid.UUID
    email: str
    expires_at: datetime
    role: str = "support"
    active: bool = True

    @property
    def id(self) -> uuid.UUID:
        return self.grant_id

    @property
    def name(self) -> str:
        return f"Support: {self.email}"

    @property
    def audit_actor(self) -> Actor:
        return staff_actor(self.email, self.grant_id)

    def get_id(self) -> str:
        return f"support:{self.tenant_id}:{self.grant_id}"


def _now(s: Session) -> datetime:
    return s.execute(select(func.now())).scalar_one()


def request_access(services: Services, tenant_id: uuid.UUID, staff_email: str, reason: str, minutes: int,
                   origin: Origin) -> SupportGrant:
    """Create a grant: pending the owner's approval, or active at once when the tenant allows that."""
    reason = reason.strip()
    if len(reason) < 10:
        raise SupportError("Write why you need access (at least 10 characters); the customer reads it.")
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise SupportError(f"Access lasts between {MIN_MINUTES} and {MAX_MINUTES} minutes.")
    with tenant_session(tenant_id, services.session_factory) as s:
        settings = s.get(TenantSettings, tenant_id)
        if settings is None:
            raise SupportError("There is no such account.")
        grant = SupportGrant(id=uuid.uuid4(), tenant_id=tenant_id, staff_email=staff_email, reason=reason,
                             minutes=minutes, status="pending")
        s.add(grant)
        s.flush()
        actor = staff_actor(staff_email, grant.id)
        record(s, tenant_id, actor, "support.requested", target_type="support_grant", target_id=grant.id,
               after={"reason": reason, "minutes": minutes}, origin=origin)
        if not settings.support_access_requires_approval:
            _activate(s, services.redis, grant, actor, origin, "support.granted_without_approval")
        s.expunge(grant)
    return grant


def _activate(s: Session, redis: Redis, grant: SupportGrant, actor: Actor, origin: Origin, action: str) -> None:
    now = _now(s)
    grant.status, grant.decided_at, grant.starts_at = "active", now, now
    grant.expires_at = now + timedelta(minutes=grant.minutes)
    s.flush()
    record(s, grant.tenant_id, actor, action, target_type="support_grant", target_id=grant.id,
           after={"staff": grant.staff_email, "expires_at": grant.expires_at.isoformat()}, origin=origin)
    enqueue(redis, support_grant_expiry_job, grant.tenant_id, grant.id,
            queue="maintenance", at=grant.expires_at + timedelta(seconds=1))


def decide(s: Session, redis: Redis, grant_id: uuid.UUID, approve: bool, decider_id: uuid.UUID, decider_email: str,
           origin: Origin) -> SupportGrant:
    """The owner approves or denies a pending request (in the request's session, already set to the tenant)."""
    grant = s.get(SupportGrant, grant_id)
    if grant is None:
        raise SupportError("That request no longer exists.")
    if grant.status != "pending":
        raise SupportError("That request was already decided.")
    actor = Actor.user(decider_id, decider_email)
    grant.decided_by = decider_id
    if approve:
        _activate(s, redis, grant, actor, origin, "support.approved")
    else:
        grant.status, grant.decided_at = "denied", _now(s)
        record(s, grant.tenant_id, actor, "support.denied", target_type="support_grant", target_id=grant.id,
               after={"staff": grant.staff_email}, origin=origin)
    return grant


def end_now(s: Session, grant_id: uuid.UUID, actor: Actor, origin: Origin) -> SupportGrant:
    """End an active grant early (the owner, or the staff member leaving)."""
    grant = s.get(SupportGrant, grant_id)
    if grant is None or grant.status != "active":
        raise SupportError("That access is not active.")
    grant.status, grant.ended_at, grant.expiry_audited = "ended", _now(s), True
    record(s, grant.tenant_id, actor, "support.ended", target_type="support_grant", target_id=grant.id,
           after={"staff": grant.staff_email}, origin=origin)
    return grant


def expire_if_due(s: Session, grant: SupportGrant) -> bool:
    """Close a grant whose time is up and audit its expiry once; True when it is (now) over."""
    if grant.status != "active" or grant.expires_at is None:
        return grant.status in ("ended", "denied")
    now = _now(s)
    if grant.expires_at > now:
        return False
    result = s.execute(
        update(SupportGrant).where(SupportGrant.id == grant.id, SupportGrant.expiry_audited.is_(False))
        .values(status="ended", ended_at=grant.expires_at, expiry_audited=True)
    )
    # An UPDATE answers with a CursorResult; Session.execute is typed for every statement, so it says Result.
    claimed = cast(CursorResult[Any], result).rowcount
    if claimed:
        record(s, grant.tenant_id, Actor.system("support access"), "support.expired", target_type="support_grant",
               target_id=grant.id, after={"staff": grant.staff_email, "expired_at": grant.expires_at.isoformat()})
    return True


@job
def support_grant_expiry_job(services: Services, tenant_id: str, grant_id: str) -> str:
    with tenant_session(tenant_id, services.session_factory) as s:
        grant = s.get(SupportGrant, uuid.UUID(grant_id))
        if grant is None:
            return "gone"
        return "expired" if expire_if_due(s, grant) else "not yet"


def active_grant(s: Session) -> SupportGrant | None:
    """The tenant's live grant, if any (for the banner)."""
    return s.execute(
        select(SupportGrant).where(SupportGrant.status == "active", SupportGrant.expires_at > func.now())
        .order_by(SupportGrant.expires_at.desc()).limit(1)
    ).scalar_one_or_none()


def load_support_user(factory: Callable[[], Session], staff: Collection[str], email: str | None,
                      user_key: str) -> SupportUser | None:
    """The principal of a ``support:<tenant>:<grant>`` key while its grant lives and ``email`` (the session's staff
    email) is still in ``staff``.

    Reads in a session of its own (the grant's tenant); the request's tenant is set after loading, by auth.
    """
    _, _, rest = user_key.partition(":")
    tenant_raw, _, grant_raw = rest.partition(":")
    try:
        tenant_id, grant_id = uuid.UUID(tenant_raw), uuid.UUID(grant_raw)
    except ValueError:
        return None
    if not email or email not in staff:
        return None
    with tenant_session(tenant_id, factory) as s:
        grant = s.get(SupportGrant, grant_id)
        if grant is None or grant.staff_email != email or grant.status != "active" or expire_if_due(s, grant):
            return None
        expires_at = grant.expires_at
    assert expires_at is not None
    return SupportUser(tenant_id, grant_id, email, expires_at)


def open_grant(factory: Callable[[], Session], grant_id: uuid.UUID, tenant_id: uuid.UUID, email: str,
               origin: Origin) -> SupportUser:
    """Staff entering a tenant through an active grant of theirs."""
    with tenant_session(tenant_id, factory) as s:
        grant = s.get(SupportGrant, grant_id)
        if grant is None or grant.staff_email != email:
            raise SupportError("That access grant is not yours.")
        if grant.status != "active" or expire_if_due(s, grant):
            raise SupportError("That access is not active (pending, denied, ended or expired).")
        record(s, tenant_id, staff_actor(email, grant.id), "support.opened", target_type="support_grant",
               target_id=grant.id, origin=origin)
        expires_at = grant.expires_at
    assert expires_at is not None
    return SupportUser(tenant_id, grant_id, email, expires_at)

