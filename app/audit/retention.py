"""Audit retention: rows older than 90 days go, through the one database function allowed to delete them.

The function also records each trimmed tenant's retention boundary (the last removed row's id, seq and hash, and
how many rows it has removed), which ``audit verify`` anchors the first kept row to (migration 0008).
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.jobs.runtime import job
from app.services import Services
from app.tenancy import no_tenant_session

log = logging.getLogger(__name__)


def purge_expired_rows(session: Session) -> int:
    """Remove expired rows of every tenant and record their boundaries; returns how many rows went."""
    removed = session.execute(text("select bi_audit_purge_expired()")).scalar_one()
    return int(removed)


@job
def purge_expired(services: Services) -> int:
    """The daily job (runs with no tenant: the function is one of the listed pre-tenant paths)."""
    with no_tenant_session(services.session_factory) as session:
        removed = purge_expired_rows(session)
    log.info("audit retention removed %d rows", removed, extra={"event": "audit.retention", "count": removed})
    return removed
