"""The "Sweep now" panel's state: the queued or running sweep job's progress (kept briefly in Redis, counts only)
and, once it is done, how the tenant's last sweep ended with the open invoice and flag counts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis
from rq.job import JobStatus
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.review.models import Flag, Snapshot, Sweep

TTL_SECONDS = 3600
_WAITING = (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.DEFERRED)


def _key(tenant_id: uuid.UUID | str) -> str:
    return f"bi:review:sweep-progress:{tenant_id}"


def reporter(redis: Redis, tenant_id: uuid.UUID | str) -> Callable[[int, int], None]:
    """What the sweep job calls with (invoices done, of total) as it writes."""

    def report(done: int, total: int) -> None:
        redis.set(_key(tenant_id), json.dumps({"running": True, "done": int(done), "total": int(total)}),
                  ex=TTL_SECONDS)

    return report


def started(redis: Redis, tenant_id: uuid.UUID | str) -> None:
    """The job has begun and is reading ConnectWise (no total known yet)."""
    redis.set(_key(tenant_id), json.dumps({"running": True, "done": 0, "total": None}), ex=TTL_SECONDS)


def finished(redis: Redis, tenant_id: uuid.UUID | str) -> None:
    redis.delete(_key(tenant_id))


@dataclass(frozen=True)
class Panel:
    """``status``: waiting (queued), reading (ConnectWise), writing (``done`` of ``total``), or idle (``last``)."""

    status: str
    done: int = 0
    total: int | None = None
    last: Sweep | None = None
    open_invoices: int = 0
    open_flags: int = 0

    @property
    def polling(self) -> bool:
        return self.status != "idle"


def panel(session: Session, redis: Redis, tenant_id: uuid.UUID | str, job_status: JobStatus | None) -> Panel:
    """The panel for the tenant's sweep job, whose RQ status is ``job_status`` (None: no such job)."""
    raw = redis.get(_key(tenant_id))
    state = json.loads(raw) if isinstance(raw, bytes | str) else None
    if isinstance(state, dict) and state.get("running") and job_status not in (JobStatus.FINISHED, JobStatus.FAILED,
                                                                                 JobStatus.STOPPED):
        total = state.get("total")
        if isinstance(total, int):
            return Panel("writing", int(state.get("done") or 0), total)
        return Panel("reading")
    if job_status in _WAITING:
        return Panel("waiting")
    if job_status == JobStatus.STARTED:
        return Panel("reading")
    return idle(session)


def idle(session: Session) -> Panel:
    last = session.execute(select(Sweep).where(Sweep.finished_at.is_not(None))
                           .order_by(Sweep.started_at.desc()).limit(1)).scalar_one_or_none()
    invoices = session.execute(select(func.count()).select_from(Snapshot)).scalar_one()
    flags = session.execute(select(func.count()).select_from(Flag).where(Flag.cleared_at.is_(None))).scalar_one()
    return Panel("idle", last=last, open_invoices=int(invoices), open_flags=int(flags))
