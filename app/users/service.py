"""Changing users: roles, deactivation, adding one by hand. Every change is audited; the last owner stays.

A seat is an active user who can sign in (any role but ``no_access``). Changes that would give one more seat take
the plan's ``seat_limit`` (None: unlimited) from their page, as billing sits above users."""

from __future__ import annotations

import uuid

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, changes, record
from app.security.server_sessions import end_user_sessions
from app.users.emails import normalise_email
from app.users.models import ROLES, User


class UserChangeError(ValueError):
    """A change that is not allowed; the message says why, for the person who tried."""


class SeatLimitReached(UserChangeError):
    """One more user with access would go past the plan's seat limit (the page offers the upgrade)."""


def seats_used(s: Session) -> int:
    """Active users who can sign in: what the plan's seat limit counts."""
    return s.execute(select(func.count()).select_from(User)
                     .where(User.active, User.role != "no_access")).scalar_one()


def check_seat(s: Session, seat_limit: int | None) -> None:
    """Raise SeatLimitReached when no seat is left under ``seat_limit``."""
    if seat_limit is not None and seats_used(s) >= seat_limit:
        raise SeatLimitReached(f"This workspace's plan includes up to {seat_limit} users with access, and they are "
                               "all taken. Upgrade to Pro to add more.")


def _active_owners(s: Session) -> int:
    return s.execute(select(func.count()).select_from(User).where(User.role == "owner", User.active)).scalar_one()


def _audit(s: Session, actor: Actor, user: User, action: str, before: dict, after: dict, origin: Origin) -> None:
    old, new = changes(before, after)
    if new:
        record(s, user.tenant_id, actor, action, target_type="user", target_id=user.id, before=old, after=new,
               origin=origin)


def check_role_change(s: Session, actor_role: str, user: User, role: str) -> None:
    """Raise UserChangeError when ``actor_role`` may not give ``user`` the role ``role`` (asked before confirming)."""
    if role not in ROLES:
        raise UserChangeError("Choose one of the listed roles.")
    if "owner" in (role, user.role) and actor_role != "owner" and role != user.role:
        raise UserChangeError("Only an owner can make someone an owner or change an owner's role.")
    if user.role == "owner" and role != "owner" and user.active and _active_owners(s) <= 1:
        raise UserChangeError("This is the last owner. Make someone else an owner first.")


def change_role(s: Session, actor: Actor, actor_role: str, user_id: uuid.UUID, role: str, origin: Origin,
                redis: Redis | None = None, *, seat_limit: int | None = None) -> User:
    """Set ``user_id``'s role; moved to ``no_access``, their sessions end (when ``redis`` is given) as if deactivated.
    Moving an active user from ``no_access`` to a role takes a seat."""
    user = s.get(User, user_id, with_for_update=True)
    if user is None:
        raise UserChangeError("That user no longer exists.")
    check_role_change(s, actor_role, user, role)
    if user.active and user.role == "no_access" and role != "no_access":
        check_seat(s, seat_limit)
    before = {"role": user.role}
    user.role = role
    s.flush()
    _audit(s, actor, user, "user.role_changed", before, {"role": role}, origin)
    if role == "no_access" and redis is not None:
        end_user_sessions(redis, user.get_id())
    return user


def set_active(s: Session, redis: Redis, actor: Actor, actor_role: str, user_id: uuid.UUID, active: bool,
               origin: Origin, *, seat_limit: int | None = None) -> User:
    """Deactivate or reactivate; reactivating someone with a role takes a seat."""
    user = s.get(User, user_id, with_for_update=True)
    if user is None:
        raise UserChangeError("That user no longer exists.")
    if active and not user.active and user.role != "no_access":
        check_seat(s, seat_limit)
    if user.role == "owner" and actor_role != "owner":
        raise UserChangeError("Only an owner can deactivate an owner.")
    if not active and user.role == "owner" and user.active and _active_owners(s) <= 1:
        raise UserChangeError("This is the last owner. Make someone else an owner first.")
    before = {"active": user.active}
    user.active = active
    # Marked as the app's decision, so a member sync never undoes it (only a sync's own deactivation).
    user.deactivation_source = None if active else "app"
    s.flush()
    _audit(s, actor, user, "user.deactivated" if not active else "user.reactivated", before, {"active": active},
           origin)
    if not active:
        end_user_sessions(redis, user.get_id())
    return user


def add_user(s: Session, actor: Actor, actor_role: str, tenant_id: uuid.UUID, email: str, name: str, role: str,
             origin: Origin, *, seat_limit: int | None = None) -> User:
    email = normalise_email(email)
    if role not in ROLES:
        raise UserChangeError("Choose one of the listed roles.")
    if role == "owner" and actor_role != "owner":
        raise UserChangeError("Only an owner can add an owner.")
    if s.execute(select(User.id).where(func.lower(User.email) == email)).first():
        raise UserChangeError("Someone with that email is already a user here.")
    if role != "no_access":
        check_seat(s, seat_limit)
    user = User(id=uuid.uuid4(), tenant_id=tenant_id, email=email, name=name.strip()[:200], role=role, active=True)
    s.add(user)
    s.flush()
    record(s, tenant_id, actor, "user.added", target_type="user", target_id=user.id,
           after={"email": email, "role": role}, origin=origin)
    return user
