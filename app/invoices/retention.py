"""Link-view retention: usage rows older than 90 days go, through the one database function allowed to delete them."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.jobs.runtime import job
from app.services import Services
from app.tenancy import no_tenant_session

log = logging.getLogger(__name__)
RETENTION_DAYS = 90  # fixed in the database function bi_link_views_purge_expired(); stated here for readers


def purge_expired_views_rows(session: Session) -> int:
    return int(session.execute(text("select bi_link_views_purge_expired()")).scalar_one())


@job
def purge_expired_views(services: Services) -> int:
    """The daily job (runs with no tenant: the function is one of the listed pre-tenant paths)."""
    with no_tenant_session(services.session_factory) as session:
        removed = purge_expired_views_rows(session)
    log.info("link view retention removed %d rows", removed, extra={"event": "invoices.view_retention",
                                                                    "count": removed})
    return removed
