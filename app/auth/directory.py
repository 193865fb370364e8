"""Pre-tenant lookups for sign-in, each through its narrow SECURITY DEFINER function (see migrations 0003, 0006)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.tenancy import no_tenant_session
from app.users.emails import normalise_email


@dataclass(frozen=True)
class Membership:
    """One active user row an email (or SSO identity) signs in as, and whether its workspace requires SSO."""

    tenant_id: uuid.UUID
    tenant_name: str
    user_id: uuid.UUID
    role: str
    require_sso: bool = False

    @property
    def user_key(self) -> str:
        return f"{self.tenant_id}:{self.user_id}"

    def allows(self, method: str) -> bool:
        """Whether a sign-in proven by ``method`` may enter this workspace; break-glass is for its owners."""
        if not self.require_sso or method.startswith("sso_"):
            return True
        return method == "break_glass" and self.role == "owner"

    def as_dict(self) -> dict[str, str | bool]:
        return {"tenant_id": str(self.tenant_id), "tenant_name": self.tenant_name, "user_id": str(self.user_id),
                "role": self.role, "require_sso": self.require_sso}

    @classmethod
    def from_dict(cls, d: dict) -> Membership:
        return cls(uuid.UUID(d["tenant_id"]), d["tenant_name"], uuid.UUID(d["user_id"]), d["role"],
                   bool(d.get("require_sso", False)))


@dataclass(frozen=True)
class StaffGrant:
    grant_id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str
    status: str
    reason: str
    minutes: int
    requested_at: datetime
    expires_at: datetime | None


def _run(factory: Callable[[], Session], query: str, params: dict) -> list:
    with no_tenant_session(factory) as session:
        return list(session.execute(text(query), params).all())


# A listed user without sign-in access (e.g. a new ConnectWise member): to sign-in, no membership at all.
NO_ACCESS = "no_access"


def memberships(factory: Callable[[], Session], email: str) -> list[Membership]:
    """The workspaces ``email`` may sign in to: active users whose role gives access."""
    rows = _run(factory, "select * from bi_user_memberships(:email)", {"email": normalise_email(email)})
    return [Membership(r.tenant_id, r.tenant_name, r.user_id, r.role, bool(r.require_sso)) for r in rows
            if r.role != NO_ACCESS]


def identity_memberships(factory: Callable[[], Session], issuer: str, provider_tenant: str | None,
                         subject: str) -> list[Membership]:
    rows = _run(factory, "select * from bi_sso_identity_users(:iss, :tid, :sub)",
                {"iss": issuer, "tid": provider_tenant or "", "sub": subject})
    return [Membership(r.tenant_id, r.tenant_name, r.user_id, r.role) for r in rows if r.role != NO_ACCESS]


def tenant_directory(factory: Callable[[], Session]) -> list[tuple[uuid.UUID, str]]:
    return [(r.tenant_id, r.tenant_name) for r in _run(factory, "select * from bi_tenant_directory()", {})]


def staff_grants(factory: Callable[[], Session], email: str) -> list[StaffGrant]:
    rows = _run(factory, "select * from bi_support_grants_for(:email)", {"email": normalise_email(email)})
    return [StaffGrant(r.grant_id, r.tenant_id, r.tenant_name, r.status, r.reason, r.minutes, r.requested_at,
                       r.expires_at) for r in rows]
