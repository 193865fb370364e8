"""Periodic jobs on RQ's scheduler: each run schedules the next, and the worker makes sure one is pending."""

from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq.job import JobStatus

from app.config import Config
from app.jobs.queue import enqueue, fetch_job
from app.jobs.runtime import job
from app.services import Services

log = logging.getLogger(__name__)

# name -> (dotted path of a job that takes no ids, interval: seconds, or the Config setting that gives it in minutes)
PERIODIC: dict[str, tuple[str, int | str]] = {
    "audit_retention": ("app.audit.retention.purge_expired", 24 * 3600),
    "member_sync": ("app.billing.jobs.sync_members_all_tenants", 6 * 3600),
    "link_view_retention": ("app.invoices.retention.purge_expired_views", 24 * 3600),
    "review_sweep": ("app.review.jobs.sweep_all_tenants", "REVIEW_SWEEP_INTERVAL_MINUTES"),
    "send_reminders": ("app.sending.reminders.remind_all_tenants", 6 * 3600),
}
_PENDING = (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED)


def _key(name: str) -> str:
    return f"bi:periodic:{name}"


def schedule_next(connection: Redis, name: str, delay_seconds: int) -> str:
    at = datetime.now(UTC) + timedelta(seconds=delay_seconds)
    scheduled = enqueue(connection, run_periodic, name, queue="maintenance", at=at)
    connection.set(_key(name), scheduled.id)
    return scheduled.id


def ensure_scheduled(connection: Redis, first_delay_seconds: int = 60) -> list[str]:
    """Schedule every periodic job that has no pending run; returns the names scheduled now."""
    scheduled = []
    for name in PERIODIC:
        job_id = connection.get(_key(name))
        pending = fetch_job(connection, job_id.decode()) if isinstance(job_id, bytes) and job_id else None
        if pending is None or pending.get_status() not in _PENDING:
            schedule_next(connection, name, first_delay_seconds)
            scheduled.append(name)
    return scheduled


def interval_seconds(config: Config, interval: int | str) -> int:
    """A periodic job's interval in seconds (a named setting is in minutes)."""
    return int(interval) if isinstance(interval, int) else int(getattr(config, interval)) * 60


@job
def run_periodic(services: Services, name: str) -> object:
    path, interval = PERIODIC[name]
    module, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)()
    finally:
        schedule_next(services.redis, name, interval_seconds(services.config, interval))
