"""Creating tenants, reading their name and setup state."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.log import Actor, record
from app.billing.models import TenantBilling
from app.billing.plans import TRIAL_DAYS
from app.connectwise.models import Connection
from app.db import set_session_tenant
from app.tenants.models import Tenant, TenantSettings
from app.users.models import User


@dataclass
class SetupStatus:
    tenant_name: str
    users: int
    connectwise_connected: bool


def create_tenant(session: Session, name: str, owner_email: str, owner_name: str = "",
                  actor: Actor | None = None, *, trial: bool = False) -> Tenant:
    """Create a tenant with its settings, its billing row and its first user (the owner). ``session`` must be
    unbound. A workspace made by sign-up starts the Pro trial (``trial``); one made by us from the CLI is comped
    (Pro without a subscription)."""
    name, owner_email = name.strip(), owner_email.strip().lower()
    if not name:
        raise ValueError("the tenant needs a name")
    if "@" not in owner_email[1:-1]:
        raise ValueError(f"not an email address: {owner_email!r}")
    tenant_id = uuid.uuid4()
    set_session_tenant(session, tenant_id)
    tenant = Tenant(id=tenant_id, name=name)
    session.add(tenant)
    session.flush()
    session.add(TenantSettings(tenant_id=tenant_id))
    if trial:
        trial_ends = dt.datetime.now(dt.UTC) + dt.timedelta(days=TRIAL_DAYS)
        session.add(TenantBilling(tenant_id=tenant_id, plan="pro", status="trialing", trial_ends_at=trial_ends))
    else:
        session.add(TenantBilling(tenant_id=tenant_id, plan="pro", status="comped"))
    owner = User(id=uuid.uuid4(), tenant_id=tenant_id, email=owner_email, name=owner_name, role="owner")
    session.add(owner)
    session.flush()
    record(session, tenant_id, actor or Actor.system("cli"), "tenant.created", target_type="tenant",
           target_id=tenant_id, after={"name": name, "owner_email": owner_email})
    return tenant


def setup_status(session: Session) -> SetupStatus:
    tenant = session.execute(select(Tenant)).scalar_one()
    users = session.execute(select(func.count()).select_from(User)).scalar_one()
    return SetupStatus(tenant_name=tenant.name, users=users, connectwise_connected=_connectwise_connected(session))


def _connectwise_connected(session: Session) -> bool:
    return session.execute(select(func.count()).select_from(Connection)).scalar_one() > 0


def tenant_name(session: Session) -> str | None:
    return session.execute(select(Tenant.name)).scalar()
