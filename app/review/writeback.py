"""Writing a review decision's billing status to ConnectWise: one ``WriteBack`` per decision (or manual change),
queued as an RQ job on ``connectwise`` once the decision's transaction commits.

The job reads the invoice's current status first (never from the cache). Already the target: done, nothing
written. Different from the status the decision was taken against (``expected_status_id``) and from the target:
someone changed it in ConnectWise meanwhile, so it is not overwritten: state "conflict", and the page asks ("Apply
mine anyway" takes their status as the new expected one and writes; "Keep theirs" leaves it). Otherwise it PATCHes
``status`` (a fixed value, so safe to repeat). Transient failures (outage, timeout, throttling, our own budget) are
retried with growing delays, ``MAX_ATTEMPTS`` tries in all, then "failed"; a refusal (the API member lacks the
permission, the invoice is closed in ConnectWise, a validation error) fails at once. A failed write-back keeps its
reason and can be retried; the decision it belongs to stays recorded either way.

A newer decision supersedes the invoice's older write-backs that have not started or that wait on a person (failed,
conflict); one already running finishes first (the newer one waits for it, so the older write never lands last),
and the newer one's conflict check accepts the status it wrote.

Each outcome (succeeded, failed, conflict) is an audit row and a timeline event; event details carry ``status`` (the
name written or meant), ``decision``, and for failures and conflicts ``reason`` (and ``theirs``, ``by``).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.connectwise import errors as cw_errors
from app.connectwise.records import InvalidRecord
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.jobs.queue import enqueue
from app.jobs.runtime import job
from app.review import events, status_map
from app.review.events import EventActor
from app.review.models import ReviewInvoice, WriteBack
from app.services import Services
from app.tenancy import tenant_session

log = logging.getLogger(__name__)
QUEUE = "connectwise"
MAX_ATTEMPTS = 4
RETRY_DELAYS = (30, 120, 600)  # seconds before the 2nd, 3rd and 4th try
# Waiting on an older write-back of the same invoice that is running: 5 s at a time, past its job timeout in all
# (after that it is taken as dead, and the conflict check still accepts the status it was writing).
WAIT_SECONDS, WAIT_ROUNDS = 5, 130
WAITING_ON_A_PERSON = ("failed", "conflict")
SUPERSEDABLE = ("pending", *WAITING_ON_A_PERSON)
INVOICE_FIELDS = ("id", "invoiceNumber", "status/id", "status/name", "status/isClosed", "glBatch/id", "glBatch/name",
                  "_info/lastUpdated", "_info/updatedBy")
_QUEUED = "review_writebacks_to_queue"
SYSTEM = Actor.system("review write-back")


# --- creating and queueing ------------------------------------------------------------------------------------

def _queue_after_commit(session: Session, redis: Any, tenant_id: str, writeback_id: uuid.UUID) -> None:
    """Queue the job when the transaction that made the row commits (a worker must find it), never on rollback."""
    queued: list[tuple[Any, str, str]] | None = session.info.get(_QUEUED)
    if queued is None:
        queued = session.info[_QUEUED] = []

        @event.listens_for(session, "after_commit")
        def _send(s: Session) -> None:
            for redis_, tid, wid in s.info.pop(_QUEUED, []):
                enqueue_job(redis_, tid, wid)

        @event.listens_for(session, "after_rollback")
        def _drop(s: Session) -> None:
            s.info.pop(_QUEUED, None)

    queued.append((redis, str(tenant_id), str(writeback_id)))


def enqueue_job(redis: Any, tenant_id: str, writeback_id: str, delay_seconds: int = 0, waited: int = 0) -> None:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay_seconds) if delay_seconds else None
    enqueue(redis, writeback_job, tenant_id, writeback_id, waited, queue=QUEUE,
            job_id=f"review-wb-{writeback_id}-{uuid.uuid4().hex[:8]}", at=at, job_timeout=600, result_ttl=3600,
            failure_ttl=7 * 86400)


def supersede(session: Session, invoice_id: int, reason: str = "Replaced by a newer decision.") -> list[WriteBack]:
    """Mark the invoice's write-backs that have not started, or that wait on a person, superseded."""
    rows = session.execute(select(WriteBack).where(WriteBack.invoice_id == invoice_id,
                                                   WriteBack.state.in_(SUPERSEDABLE))
                           .with_for_update()).scalars().all()
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        row.state, row.reason, row.finished_at = "superseded", reason, now
    return list(rows)


def create(session: Session, redis: Any, tenant_id: uuid.UUID | str, invoice_id: int, decision: str,
           target_status_id: int | None, target_status_name: str, expected_status_id: int | None,
           created_by: uuid.UUID | None) -> WriteBack:
    """A write-back for a decision (``target_status_id`` None: the job picks the mapped status when it runs),
    superseding the invoice's older ones; its job is queued once the caller's transaction commits."""
    supersede(session, invoice_id)
    row = WriteBack(id=uuid.uuid4(), tenant_id=uuid.UUID(str(tenant_id)), invoice_id=invoice_id, decision=decision,
                    target_status_id=target_status_id or 0, target_status_name=target_status_name or "",
                    expected_status_id=expected_status_id, state="pending", attempts=0, created_by=created_by,
                    created_at=dt.datetime.now(dt.UTC))
    session.add(row)
    session.flush()
    _queue_after_commit(session, redis, str(tenant_id), row.id)
    return row


def latest(session: Session, invoice_id: int) -> WriteBack | None:
    """The invoice's newest write-back (whatever its state)."""
    return session.execute(select(WriteBack).where(WriteBack.invoice_id == invoice_id)
                           .order_by(WriteBack.created_at.desc(), WriteBack.id.desc()).limit(1)).scalar_one_or_none()


def open_for(session: Session, invoice_id: int) -> WriteBack | None:
    """The write-back that has not reached ConnectWise yet (pending or running), if any."""
    return session.execute(select(WriteBack).where(WriteBack.invoice_id == invoice_id,
                                                   WriteBack.state.in_(("pending", "running")))
                           .order_by(WriteBack.created_at.desc()).limit(1)).scalar_one_or_none()


# --- a person's answers to a failure or a conflict --------------------------------------------------------------

class WriteBackError(ValueError):
    """The write-back is not in a state that allows this (already retried, superseded, gone)."""


def _mine(session: Session, invoice_id: int, writeback_id: uuid.UUID, states: tuple[str, ...]) -> WriteBack:
    row = session.execute(select(WriteBack).where(WriteBack.id == writeback_id, WriteBack.invoice_id == invoice_id)
                          .with_for_update()).scalar_one_or_none()
    if row is None or row.state not in states:
        raise WriteBackError("This write-back has moved on since the page was shown; the panel now says where it is.")
    return row


def retry(session: Session, redis: Any, tenant_id: uuid.UUID | str, invoice_id: int, writeback_id: uuid.UUID,
          actor: Actor, origin: Origin | None = None) -> WriteBack:
    """Try a failed write-back again (a fresh round of tries, the conflict check included)."""
    row = _mine(session, invoice_id, writeback_id, ("failed",))
    before = {"state": row.state, "reason": row.reason}
    row.state, row.reason, row.attempts, row.finished_at = "pending", None, 0, None
    record(session, tenant_id, actor, "review.writeback_retried", target_type="invoice", target_id=invoice_id,
           before=before, after={"state": "pending", "writeback_id": str(row.id)}, origin=origin)
    _queue_after_commit(session, redis, str(tenant_id), row.id)
    return row


def apply_anyway(session: Session, redis: Any, tenant_id: uuid.UUID | str, invoice_id: int,
                 writeback_id: uuid.UUID, actor: Actor, origin: Origin | None = None) -> WriteBack:
    """"Apply mine anyway": the status found in ConnectWise becomes the expected one, and ours is written over it
    (unless it changes yet again before the write)."""
    row = _mine(session, invoice_id, writeback_id, ("conflict",))
    invoice = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == invoice_id)).scalar_one_or_none()
    theirs = invoice.status_id if invoice is not None else None
    before = {"state": row.state, "expected_status_id": row.expected_status_id}
    row.expected_status_id = theirs
    row.state, row.reason, row.attempts, row.finished_at = "pending", None, 0, None
    record(session, tenant_id, actor, "review.writeback_forced", target_type="invoice", target_id=invoice_id,
           before=before, after={"state": "pending", "expected_status_id": theirs, "writeback_id": str(row.id),
                                 "status": row.target_status_name}, origin=origin)
    _queue_after_commit(session, redis, str(tenant_id), row.id)
    return row


def keep_theirs(session: Session, tenant_id: uuid.UUID | str, invoice_id: int, writeback_id: uuid.UUID,
                actor: Actor, origin: Origin | None = None) -> WriteBack:
    """"Keep theirs": our write-back is dropped; ConnectWise keeps the status it has (the decision stays)."""
    row = _mine(session, invoice_id, writeback_id, ("conflict",))
    invoice = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == invoice_id)).scalar_one_or_none()
    theirs = invoice.status_name if invoice is not None else ""
    row.state, row.finished_at = "superseded", dt.datetime.now(dt.UTC)
    row.reason = f"Kept the status set in ConnectWise ({theirs})." if theirs else "Kept the status set in ConnectWise."
    record(session, tenant_id, actor, "review.writeback_kept_theirs", target_type="invoice", target_id=invoice_id,
           before={"state": "conflict"}, after={"state": "superseded", "kept": theirs, "writeback_id": str(row.id)},
           origin=origin)
    return row


# --- the job ----------------------------------------------------------------------------------------------------

@dataclass
class _Plan:
    """What the job needs from the database, read before it talks to ConnectWise (no lock held meanwhile)."""

    invoice_id: int
    decision: str
    target_id: int | None
    target_name: str
    expected: int | None
    acceptable: set[int]
    unresolved: set[str]  # decisions of our earlier write-backs whose status was not picked yet
    stored_map: dict[str, int]
    catalog: list[status_map.Status] | None


@dataclass
class _Result:
    state: str  # done | failed | conflict | retry
    reason: str | None = None
    status_id: int | None = None  # what ConnectWise has now, when known
    status_name: str = ""
    target_id: int | None = None
    target_name: str = ""
    theirs_by: str = ""
    catalog: list[status_map.Status] | None = None


def _plan(session: Session, row: WriteBack, catalog: list[status_map.Status] | None) -> _Plan:
    stored = status_map.stored_map(session, row.tenant_id)
    if not row.target_status_id and catalog is not None:
        # Picked now, while the row is locked, so the panel names the status being written.
        chosen = status_map.effective_map(stored, catalog).get(row.decision)
        if chosen is not None:
            row.target_status_id, row.target_status_name = chosen.id, chosen.name
    # Statuses our own earlier write-backs wrote (or are writing) after this one was asked for are ours, not a
    # change made by someone in ConnectWise.
    earlier = [w for w in session.execute(select(WriteBack).where(
        WriteBack.invoice_id == row.invoice_id, WriteBack.id != row.id, WriteBack.created_at <= row.created_at,
        WriteBack.state.in_(("running", "done")))).scalars()
        if w.state == "running" or (w.finished_at is not None and w.finished_at >= row.created_at)]
    acceptable = {w.target_status_id for w in earlier if w.target_status_id}
    unresolved = {w.decision for w in earlier if not w.target_status_id}
    expected = row.expected_status_id
    acceptable |= {s for s in (expected, row.target_status_id) if s}
    return _Plan(row.invoice_id, row.decision, row.target_status_id or None, row.target_status_name, expected,
                 acceptable, unresolved, stored, catalog)


def _earlier_running(session: Session, row: WriteBack) -> bool:
    return session.execute(select(WriteBack.id).where(
        WriteBack.invoice_id == row.invoice_id, WriteBack.id != row.id, WriteBack.created_at <= row.created_at,
        WriteBack.state == "running")).first() is not None


def perform(services: Services, tenant_id: str, writeback_id: str, *, waited: int = 0,
            client_options: Mapping[str, Any] | None = None) -> str:
    """Run one try of a write-back; returns its state afterwards (``pending`` when another try is scheduled).

    While an older write-back of the same invoice is still running, this one waits for it (``WAIT_SECONDS`` at a
    time, ``WAIT_ROUNDS`` at most): started side by side, the older write could land last and win."""
    wid = uuid.UUID(str(writeback_id))
    client = None
    with tenant_session(tenant_id, services.session_factory) as session:
        row = session.execute(select(WriteBack).where(WriteBack.id == wid).with_for_update()).scalar_one_or_none()
        if row is None or row.state != "pending":
            return row.state if row is not None else "gone"
        if waited < WAIT_ROUNDS and _earlier_running(session, row):
            enqueue_job(services.redis, tenant_id, str(row.id), WAIT_SECONDS, waited + 1)
            return row.state
        row.state, row.attempts = "running", row.attempts + 1
        plan = _plan(session, row, status_map.cached_catalog(session, services.redis, tenant_id))
        try:
            client = tenant_client(session, services.keyring, services.config, services.redis, for_page=False,
                                   **dict(client_options or {}))
        except NotConnected:
            result = _Result("failed", "ConnectWise is not connected for this workspace, so nothing was written.")
        except cw_errors.ConnectWiseError as exc:
            result = _Result("retry" if _transient(exc) else "failed", _reason(exc, None))
    if client is not None:
        with client:
            try:
                result = _write(client, plan)
            except Exception:  # a bug must not leave the row "running" for ever
                log.exception("review write-back stopped", extra={"event": "review.writeback_error"})
                result = _Result("failed", "An unexpected error stopped the write-back; nothing is lost: Retry it.")
    return _finish(services, tenant_id, wid, result)


def _write(client: Any, plan: _Plan) -> _Result:
    current: dict | None = None
    try:
        target_id, target_name = plan.target_id, plan.target_name
        catalog = plan.catalog
        if target_id is None or not target_name or plan.unresolved:
            catalog = catalog or status_map.fetch_catalog(client)
            mapped = status_map.effective_map(plan.stored_map, catalog)
            plan.acceptable |= {s.id for d, s in mapped.items() if d in plan.unresolved and s is not None}
            if target_id is None:
                chosen = mapped.get(plan.decision)
                if chosen is None:
                    return _Result("failed", f"No ConnectWise billing status is mapped to “{plan.decision}”, and "
                                             "none fits by name: pick one on the review settings page, then Retry.",
                                   catalog=catalog)
                target_id, target_name = chosen.id, chosen.name
            else:
                target_name = next((s.name for s in catalog if s.id == target_id), f"status {target_id}")
        read = client.get(f"finance/invoices/{plan.invoice_id}", {"fields": ",".join(INVOICE_FIELDS)}, cache=False)
        current = read if isinstance(read, dict) else {}
        now_id, now_name = _status_of(current)
        found = _Result("done", None, now_id, now_name, target_id, target_name, catalog=catalog)
        if now_id == target_id:
            return found  # already so (a retry after a write that landed, or a person did the same)
        if plan.expected is not None and now_id not in plan.acceptable | {target_id}:
            info = current.get("_info")
            info = info if isinstance(info, dict) else {}
            found.state, found.theirs_by = "conflict", str(info.get("updatedBy") or "")
            by = f" by {found.theirs_by}" if found.theirs_by else ""
            found.reason = (f"Changed in ConnectWise to “{now_name}”{by} meanwhile, after the decision was taken: "
                            f"not overwritten with “{target_name}”.")
            return found
        body = client.patch(f"finance/invoices/{plan.invoice_id}",
                            [{"op": "replace", "path": "status", "value": {"id": target_id}}], idempotent=True)
        written_id, written_name = _status_of(body) if isinstance(body, dict) else (target_id, target_name)
        return _Result("done", None, written_id or target_id, written_name or target_name, target_id, target_name,
                       catalog=catalog)
    except (cw_errors.ConnectWiseError, InvalidRecord) as exc:
        retry_it = _transient(exc)
        return _Result("retry" if retry_it else "failed", _reason(exc, current),
                       target_id=plan.target_id, target_name=plan.target_name)


def _status_of(record_: Any) -> tuple[int | None, str]:
    status = record_.get("status") if isinstance(record_, dict) else None
    if not isinstance(status, dict):
        return None, ""
    sid = status.get("id")
    return (sid if isinstance(sid, int) and not isinstance(sid, bool) else None), str(status.get("name") or "")


def _transient(exc: Exception | None) -> bool:
    return isinstance(exc, cw_errors.Busy | cw_errors.WriteUncertain) or bool(getattr(exc, "retryable", False))


def _reason(exc: Exception | None, current: dict | None) -> str:
    """What a person is told: what went wrong and what fixes it, never a raw payload."""
    if isinstance(exc, cw_errors.PermissionMissing):
        return (f"ConnectWise refused: {exc}. Give the API member's security role edit rights there (Finance › "
                "Invoicing), then Retry.")
    if isinstance(exc, cw_errors.AuthRefused):
        return f"{exc}. Fix the connection on the ConnectWise settings page, then Retry."
    if isinstance(exc, cw_errors.NotFound):
        return "The invoice no longer exists in ConnectWise."
    if isinstance(exc, cw_errors.BadRequest):
        batch = current.get("glBatch") if isinstance(current, dict) else None
        status = current.get("status") if isinstance(current, dict) else None
        if isinstance(batch, dict):
            return (f"The invoice is closed in ConnectWise: it was exported to accounting (batch "
                    f"{batch.get('name') or batch.get('id')}), and ConnectWise refuses changes to it. Reopen it there "
                    "(unbatch it), then Retry.")
        if isinstance(status, dict) and status.get("isClosed"):
            return (f"The invoice is closed in ConnectWise (status “{status.get('name')}”) and ConnectWise refused "
                    f"the change ({exc}). Reopen it there, then Retry.")
        return f"ConnectWise refused the status change: {exc}."
    if isinstance(exc, InvalidRecord):
        return f"ConnectWise sent billing statuses we cannot read ({exc})."
    if exc is None:
        return "The write-back failed."
    return f"ConnectWise could not be reached: {exc}"


def _finish(services: Services, tenant_id: str, wid: uuid.UUID, result: _Result) -> str:
    with tenant_session(tenant_id, services.session_factory) as session:
        row = session.execute(select(WriteBack).where(WriteBack.id == wid).with_for_update()).scalar_one_or_none()
        if row is None:
            return "gone"  # review storage was turned off meanwhile: nothing left to report to
        if result.catalog is not None:
            status_map.remember_catalog(session, services.redis, tenant_id, result.catalog)
        if result.target_id:
            row.target_status_id, row.target_status_name = result.target_id, result.target_name
        invoice = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == row.invoice_id)
                                  ).scalar_one_or_none()
        now = dt.datetime.now(dt.UTC)
        if result.state == "retry" and row.attempts < MAX_ATTEMPTS:
            delay = RETRY_DELAYS[min(row.attempts - 1, len(RETRY_DELAYS) - 1)]
            at = (now + dt.timedelta(seconds=delay)).strftime("%H:%M UTC")
            row.state = "pending"
            row.reason = f"{result.reason} Trying again at {at} (try {row.attempts + 1} of {MAX_ATTEMPTS})."
            enqueue_job(services.redis, tenant_id, str(row.id), delay)
            return row.state
        if result.state == "retry":
            result.state = "failed"
            result.reason = f"{result.reason} Gave up after {row.attempts} tries; Retry when ConnectWise is back."
        row.state, row.reason, row.finished_at = result.state, result.reason, now
        if invoice is not None and result.status_id is not None:
            invoice.status_id, invoice.status_name = result.status_id, result.status_name or invoice.status_name
        kind = {"done": "writeback_succeeded", "failed": "writeback_failed", "conflict": "writeback_conflict"}[row.state]
        detail: dict[str, Any] = {"status": row.target_status_name, "decision": row.decision,
                                  "writeback_id": str(row.id)}
        if row.reason:
            detail["reason"] = row.reason
        if row.state == "conflict":
            detail["theirs"], detail["by"] = result.status_name, result.theirs_by
        events.add(session, services.keyring, tenant_id, row.invoice_id, kind, EventActor.system(), detail)
        record(session, tenant_id, SYSTEM, f"review.{kind}", target_type="invoice", target_id=row.invoice_id,
               after={"writeback_id": str(row.id), "decision": row.decision, "status_id": row.target_status_id,
                      "status": row.target_status_name, "state": row.state, "reason": row.reason,
                      "attempts": row.attempts})
        log.info("review write-back %s", row.state, extra={"event": f"review.{kind}"})
        return row.state


@job
def writeback_job(services: Services, tenant_id: str, writeback_id: str, waited: int = 0) -> str:
    """The worker's try of one write-back."""
    return perform(services, tenant_id, writeback_id, waited=int(waited))
