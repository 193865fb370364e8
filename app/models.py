"""Imports every model so ``Base.metadata`` is complete (for tests and tooling)."""

from app.audit.models import AuditEntry
from app.connectwise.models import Connection, MemberSync
from app.tenants.models import Tenant, TenantSettings
from app.users.models import User

__all__ = ["AuditEntry", "Connection", "MemberSync", "Tenant", "TenantSettings", "User"]
