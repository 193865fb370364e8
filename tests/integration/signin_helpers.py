"""Driving the emailed-code sign-in as a browser would: ask, run the mail job, read the outbox, type the code."""

from __future__ import annotations

import json
import re

from rq import SimpleWorker

from app.jobs.queue import get_queue
from app.mail.send import OUTBOX_KEY
from tests.conftest import csrf_of

AT = chr(64)


def run_jobs(app, queue: str = "mail") -> None:  # type: ignore[no-untyped-def]
    conn = app.extensions["redis"]
    q = get_queue(conn, queue)
    with app.app_context():
        SimpleWorker([q], connection=conn, serializer=q.serializer).work(burst=True)


def run_delayed_jobs(app, queue: str = "mail") -> int:  # type: ignore[no-untyped-def]
    """Run every job scheduled for later as if its time had come (the worker's scheduler would); returns how many."""
    from rq.job import Job

    conn = app.extensions["redis"]
    q = get_queue(conn, queue)
    registry = q.scheduled_job_registry
    job_ids = registry.get_job_ids()
    for job_id in job_ids:
        delayed = Job.fetch(job_id, connection=conn, serializer=q.serializer)
        registry.remove(delayed)
        q.enqueue_job(delayed)
    run_jobs(app, queue)
    return len(job_ids)


def outbox(app) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(m) for m in app.extensions["redis"].lrange(OUTBOX_KEY, 0, -1)]


def latest_code(app, to: str) -> str | None:  # type: ignore[no-untyped-def]
    for message in outbox(app):
        if message["to"] == to:
            found = re.search(r"\b(\d{6})\b", message["text"])
            return found.group(1) if found else None
    return None


def ask_for_code(app, client, email: str, next_path: str | None = None):  # type: ignore[no-untyped-def]
    data = {"email": email, "csrf_token": csrf_of(client)}
    if next_path:
        data["next"] = next_path
    response = client.post("/sign-in", data=data)
    run_jobs(app)
    return response


def type_code(client, code: str):  # type: ignore[no-untyped-def]
    return client.post("/sign-in/code", data={"code": code, "csrf_token": csrf_of(client)})


def sign_in_with_code(app, client, email: str, next_path: str | None = None):  # type: ignore[no-untyped-def]
    ask_for_code(app, client, email, next_path)
    code = latest_code(app, email)
    assert code, "no code was mailed"
    return type_code(client, code)


def session_cookie(client) -> str | None:  # type: ignore[no-untyped-def]
    cookie = client.get_cookie("bi_session")
    return cookie.value if cookie else None


def audit_rows(app, tenant_id, action: str | None = None) -> list:  # type: ignore[no-untyped-def]
    """The tenant's audit rows, oldest first (optionally one action), detached from their session."""
    from sqlalchemy import select

    from app.audit.models import AuditEntry
    from app.tenancy import tenant_session

    with tenant_session(tenant_id, app.extensions["session_factory"]) as s:
        query = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            query = query.where(AuditEntry.action == action)
        rows = s.execute(query).scalars().all()
        for r in rows:
            s.expunge(r)
        return rows
