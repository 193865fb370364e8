"""Bulk approve from the inbox: a preview of what would happen, then a job (queue ``default``) that approves each
selected invoice as its own decision (its own transaction, timeline entry, audit row and write-back), with progress
the panel polls.

Invoices with open error or warning flags are approved only when confirmed one by one (the soft gate, per invoice);
the job checks again when it reaches each invoice, so flags raised since the preview still stop it. The run (who,
which invoices, which confirmed, the request's origin for the audit rows) and its progress live in Redis for a day;
the job gets only the tenant and run ids.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin
from app.jobs.queue import enqueue
from app.jobs.runtime import job
from app.review import decisions
from app.review.decisions import DecisionError
from app.review.models import Reviewer, ReviewInvoice, WriteBack
from app.services import Services
from app.tenancy import tenant_session
from app.users.models import User

log = logging.getLogger(__name__)
MAX_INVOICES = 500
RUN_TTL_SECONDS = 86400
QUEUE = "default"


class BulkError(ValueError):
    """Nothing to do, or too much at once."""


@dataclass(frozen=True)
class Item:
    invoice_id: int
    number: str
    company: str
    blocking: int = 0
    why: str = ""


@dataclass
class Preview:
    ready: list[Item] = field(default_factory=list)  # approved and written back
    flagged: list[Item] = field(default_factory=list)  # open error or warning flags: only if confirmed
    skipped: list[Item] = field(default_factory=list)  # nothing to approve, and why

    @property
    def ids(self) -> list[int]:
        return [i.invoice_id for i in self.ready + self.flagged]


def _selected(ids: Sequence[int]) -> list[int]:
    unique = list(dict.fromkeys(int(i) for i in ids if int(i) > 0))
    if not unique:
        raise BulkError("Select at least one invoice.")
    if len(unique) > MAX_INVOICES:
        raise BulkError(f"Select at most {MAX_INVOICES} invoices at a time.")
    return unique


def preview(session: Session, ids: Sequence[int], user: Any, *, only_unflagged: bool = False) -> Preview:
    """What approving ``ids`` would do for ``user``; ``only_unflagged`` keeps those with no open flag at all
    ("Select all with no open flags on this page")."""
    wanted = _selected(ids)
    rows = {r.invoice_id: r for r in session.execute(select(ReviewInvoice)
                                                      .where(ReviewInvoice.invoice_id.in_(wanted))).scalars()}
    member_id = getattr(user, "cw_member_id", None)
    approved_by_me = set(session.execute(select(Reviewer.invoice_id).where(
        Reviewer.invoice_id.in_(wanted), Reviewer.state == "approved",
        (Reviewer.user_id == user.id) | ((Reviewer.member_id == member_id) & Reviewer.user_id.is_(None))
        if member_id is not None else Reviewer.user_id == user.id)).scalars())
    plan = Preview()
    for invoice_id in wanted:
        row = rows.get(invoice_id)
        if row is None:
            plan.skipped.append(Item(invoice_id, str(invoice_id), "", why="Not in review."))
            continue
        if only_unflagged and row.open_flags > 0:
            continue
        item = Item(invoice_id, row.invoice_number, row.company_name, row.blocking_flags)
        if row.state == "closed":
            plan.skipped.append(Item(**{**asdict(item), "why": "Its review is closed."}))
        elif not row.is_open:
            plan.skipped.append(Item(**{**asdict(item), "why": "No longer open in ConnectWise."}))
        elif invoice_id in approved_by_me:
            plan.skipped.append(Item(**{**asdict(item), "why": "You have already approved it."}))
        elif row.blocking_flags > 0:
            plan.flagged.append(item)
        else:
            plan.ready.append(item)
    if only_unflagged and not plan.ready and not plan.skipped:
        raise BulkError("No invoice on this page is free of open flags.")
    return plan


# --- the run ----------------------------------------------------------------------------------------------------

def _key(tenant_id: str, run_id: str) -> str:
    return f"bi:review:bulk:{tenant_id}:{run_id}"


def start(redis: Redis, tenant_id: str, user_id: uuid.UUID, ids: Sequence[int], confirmed: Sequence[int],
          origin: Origin | None = None) -> str:
    """Record the run and queue its job; returns the run id the progress panel polls."""
    wanted = _selected(ids)
    run_id = secrets.token_hex(16)
    origin = origin or Origin()
    run = {"user_id": str(user_id), "ids": wanted, "confirmed": sorted(set(confirmed) & set(wanted)),
           "origin": {"ip": origin.ip, "user_agent": origin.user_agent, "request_id": origin.request_id},
           "started_at": dt.datetime.now(dt.UTC).isoformat(), "done": 0, "finished": False, "results": []}
    redis.set(_key(tenant_id, run_id), json.dumps(run), ex=RUN_TTL_SECONDS)
    enqueue(redis, bulk_approve_job, tenant_id, run_id, queue=QUEUE, job_timeout=3600, result_ttl=3600,
            failure_ttl=7 * 86400)
    return run_id


def _load(redis: Redis, tenant_id: str, run_id: str) -> dict | None:
    raw = redis.get(_key(tenant_id, run_id))
    return json.loads(raw) if raw else None


def _save(redis: Redis, tenant_id: str, run_id: str, run: dict) -> None:
    redis.set(_key(tenant_id, run_id), json.dumps(run), ex=RUN_TTL_SECONDS)


def _one(services: Services, tenant_id: str, run: dict, invoice_id: int) -> dict[str, Any]:
    """Approve one invoice in its own transaction; what happened, for the summary."""
    origin = Origin(**run["origin"])
    with tenant_session(tenant_id, services.session_factory) as session:
        user = session.get(User, uuid.UUID(run["user_id"]))
        row = session.execute(select(ReviewInvoice.invoice_number).where(ReviewInvoice.invoice_id == invoice_id)
                              ).scalar_one_or_none()
        number = row or str(invoice_id)
        if user is None or not user.active:
            return {"invoice_id": invoice_id, "number": number, "result": "failed",
                    "why": "The account that started this is no longer active."}
        try:
            done = decisions.approve(session, services, tenant_id, invoice_id, user, Actor.user(user.id, user.email),
                                     origin, confirmed=invoice_id in set(run["confirmed"]))
        except DecisionError as exc:
            return {"invoice_id": invoice_id, "number": number, "result": "skipped", "why": exc.message}
        if done.gated:
            return {"invoice_id": invoice_id, "number": number, "result": "skipped",
                    "why": f"{len(done.gate)} open error or warning flag{'s' if len(done.gate) != 1 else ''}, "
                           "not confirmed."}
        return {"invoice_id": invoice_id, "number": number, "result": "approved",
                "why": "Invoice approved." if done.outcome == "approved" else "Your approval is recorded; "
                                                                               "other reviewers still to decide."}


def run_bulk(services: Services, tenant_id: str, run_id: str) -> dict | None:
    """Work through a run, saving progress after each invoice; the run's record at the end."""
    run = _load(services.redis, tenant_id, run_id)
    if run is None or run.get("finished"):
        return run
    for invoice_id in run["ids"][run["done"]:]:
        try:
            result = _one(services, tenant_id, run, invoice_id)
        except Exception:  # one invoice's failure must not stop the others
            log.exception("bulk approve: one invoice failed", extra={"event": "review.bulk_failed_one"})
            result = {"invoice_id": invoice_id, "number": str(invoice_id), "result": "failed",
                      "why": "An error stopped this one; approve it from its page."}
        run["results"].append(result)
        run["done"] += 1
        _save(services.redis, tenant_id, run_id, run)
    run["finished"] = True
    _save(services.redis, tenant_id, run_id, run)
    log.info("bulk approve finished", extra={"event": "review.bulk_finished"})
    return run


@job
def bulk_approve_job(services: Services, tenant_id: str, run_id: str) -> dict[str, int]:
    run = run_bulk(services, tenant_id, run_id) or {"results": []}
    return {k: sum(1 for r in run["results"] if r["result"] == k) for k in ("approved", "skipped", "failed")}


@dataclass
class Progress:
    run_id: str
    total: int
    done: int
    finished: bool
    approved: list[dict]
    skipped: list[dict]
    failed: list[dict]
    writebacks: dict[str, int]  # write-back states of the approvals this run made

    @property
    def polling(self) -> bool:
        return not self.finished or self.writebacks.get("pending", 0) + self.writebacks.get("running", 0) > 0


def progress(session: Session, redis: Redis, tenant_id: str, run_id: str) -> Progress | None:
    run = _load(redis, tenant_id, run_id)
    if run is None:
        return None
    results = run["results"]
    approved = [r for r in results if r["result"] == "approved"]
    counts: dict[str, int] = {}
    if approved:
        started = dt.datetime.fromisoformat(run["started_at"])
        counts = dict(session.execute(
            select(WriteBack.state, func.count()).where(WriteBack.invoice_id.in_([r["invoice_id"] for r in approved]),
                                                        WriteBack.decision == "approved",
                                                        WriteBack.created_at >= started)
            .group_by(WriteBack.state)).tuples().all())
    return Progress(run_id, len(run["ids"]), run["done"], bool(run.get("finished")), approved,
                    [r for r in results if r["result"] == "skipped"],
                    [r for r in results if r["result"] == "failed"], counts)
