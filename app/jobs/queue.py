"""Queues with the JSON serializer, and the one enqueue helper that refuses anything but ids."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

# In the order a worker takes from them: a sign-in code never waits behind a burst of PDFs or ConnectWise pulls.
# mail: sign-in codes and notices (small, a person is waiting); pdf: invoice PDFs; sending: invoices emailed to
# clients, one message a job (a person waits for "Sent"; bulk sends queue many); connectwise: pulls and syncs;
# maintenance: periodic and delayed housekeeping; default: bulk approve runs (each of its write-backs goes to
# connectwise), and it drains jobs queued before the split.
QUEUE_NAMES = ("mail", "pdf", "sending", "connectwise", "maintenance", "default")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def redis_connection(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30)


def get_queue(connection: Redis, name: str) -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection, serializer=JSONSerializer)


def queues_by_priority(connection: Redis, names: list[str] | tuple[str, ...] = QUEUE_NAMES) -> list[Queue]:
    """The queues a worker serves, highest priority first (RQ always takes from the first non-empty one)."""
    order = [name for name in QUEUE_NAMES if name in names]
    unknown = set(names) - set(QUEUE_NAMES)
    if unknown:
        raise ValueError(f"unknown queue {sorted(unknown)[0]!r}")
    return [get_queue(connection, name) for name in order]


def check_job_args(args: tuple[Any, ...]) -> None:
    """Jobs take ids only: UUIDs, integers or short id-like strings, never secrets or payloads."""
    for arg in args:
        if isinstance(arg, bool) or not isinstance(arg, (int, str, uuid.UUID)):
            raise TypeError(f"job arguments must be ids, got {type(arg).__name__}")
        if isinstance(arg, str) and not _ID.match(arg):
            raise ValueError("job arguments must be ids (letters, digits, '-', '_', ':', '.')")


def enqueue(connection: Redis, func: Callable[..., Any], *ids: Any, queue: str,
            job_id: str | None = None, at: datetime | None = None, **options: Any) -> Job:
    """Enqueue ``func(*ids)`` on the ``queue`` of its workload; tenant-scoped jobs pass the tenant id first."""
    check_job_args(ids)
    args = tuple(str(a) if isinstance(a, uuid.UUID) else a for a in ids)
    q = get_queue(connection, queue)
    if at is not None:
        return q.enqueue_at(at, func, args=args, job_id=job_id, **options)
    return q.enqueue(func, args=args, job_id=job_id, **options)


def fetch_job(connection: Redis, job_id: str) -> Job | None:
    from rq.exceptions import NoSuchJobError

    try:
        return Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return None
