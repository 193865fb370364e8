"""Review's jobs: one tenant's sweep, and the periodic fan-out that queues a sweep per connected tenant (and the
callbacks job where the callbacks are not what they should be)."""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq.job import JobStatus
from sqlalchemy.orm import Session

from app.billing.limits import review_limit_now
from app.connectwise.connection import get_connection
from app.jobs.fanout import fan_out
from app.jobs.queue import enqueue, fetch_job
from app.jobs.runtime import job
from app.review import progress
from app.review.callback_jobs import retry_if_due
from app.review.details import fill_details
from app.review.routing import request_routing
from app.review.settings import settings_of
from app.review.sweep import run_sweep
from app.services import Services
from app.tenancy import tenant_session

_PENDING = (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.STARTED)


def sweep_job_id(tenant_id: str) -> str:
    return f"review-sweep-{tenant_id}"


@job
def sweep_tenant(services: Services, tenant_id: str, kind: str = "incremental") -> dict[str, Any]:
    """One tenant's sweep, as the worker runs it (incremental unless it must be full, or ``kind`` is "full"),
    reporting its progress to the "Sweep now" panel; returns the sweep's record."""
    with tenant_session(tenant_id, services.session_factory) as session:
        limit = review_limit_now(session)  # the plan's, now: a trial that ended an hour ago reviews like Free
    progress.started(services.redis, tenant_id)
    try:
        result = run_sweep(services, tenant_id, kind="full" if kind == "full" else "incremental",
                           progress=progress.reporter(services.redis, tenant_id), review_limit=limit)
    finally:
        progress.finished(services.redis, tenant_id)
    request_routing(services, tenant_id)  # reviewers of invoices new to review, from their ConnectWise routing
    if result.kind == "full" and result.outcome == "ok":
        fill_details(services, tenant_id)  # agreement additions and payments the sweep left for after its flags
    return result.as_json()


def sweep_status(redis: Redis, tenant_id: str) -> JobStatus | None:
    """The RQ status of the tenant's sweep job (None: none queued, or long expired)."""
    pending = fetch_job(redis, sweep_job_id(tenant_id))
    return pending.get_status() if pending is not None else None


def request_sweep(services: Services, tenant_id: str) -> bool:
    """Queue a sweep of the tenant unless one is already queued or running; True when one was queued now."""
    pending = fetch_job(services.redis, sweep_job_id(tenant_id))
    if pending is not None and pending.get_status() in _PENDING:
        return False
    enqueue(services.redis, sweep_tenant, tenant_id, queue="connectwise", job_id=sweep_job_id(tenant_id),
            job_timeout=1800, result_ttl=3600, failure_ttl=7 * 86400)
    return True


@job
def sweep_all_tenants(services: Services) -> int:
    """The periodic fan-out: a queued sweep per tenant that is connected and keeps review storage on."""

    def queue_sweep(session: Session, tenant_id: str) -> bool:
        retry_if_due(services, session, tenant_id)  # callbacks that failed or drifted are fixed on the same tick
        if get_connection(session) is None or not settings_of(session, tenant_id).storage_enabled:
            return False
        return request_sweep(services, tenant_id)

    return fan_out(queue_sweep, services.session_factory)
