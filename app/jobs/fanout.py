"""The fan-out over tenants: one step per tenant (usually "queue this tenant's job"), each in its own tenant session.

Member sync's periodic run uses it, and the review sweep will. Tenants come from ``bi_tenant_ids()``, the one
pre-tenant path that lists them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from app.observability.logs import tenant_id_var
from app.tenancy import all_tenant_ids, tenant_session

log = logging.getLogger(__name__)

Step = Callable[[Session, str], bool]


class FanOutFailed(RuntimeError):
    """Some tenants' steps failed; the others ran. Carries counts and tenant ids only."""

    def __init__(self, done: int, failed: list[str]) -> None:
        super().__init__(f"fan-out: {len(failed)} tenant(s) failed, {done} done")
        self.done, self.failed = done, failed


def fan_out(step: Step, factory: Callable[[], Session]) -> int:
    """Run ``step(session, tenant_id)`` for every tenant, each in its own tenant-bound session committed on its
    own; returns how many steps did something (returned true). One tenant's failure never stops the others: it is
    logged and rolled back, and FanOutFailed is raised once every tenant has had its turn."""
    done, failed = 0, []
    for tenant_id in all_tenant_ids(factory):
        token = tenant_id_var.set(tenant_id)  # every log line of the step names its tenant
        try:
            with tenant_session(tenant_id, factory) as session:
                done += bool(step(session, tenant_id))
        except Exception as exc:
            # The type only: a step's message may quote what it read.
            log.warning("fan-out step failed: %s", type(exc).__name__, extra={"event": "jobs.fan_out_failed"})
            failed.append(tenant_id)
        finally:
            tenant_id_var.reset(token)
    if failed:
        raise FanOutFailed(done, failed)
    return done
