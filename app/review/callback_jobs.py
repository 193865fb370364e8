"""Keeping the tenant's ConnectWise callbacks in line with review, as RQ jobs on ``connectwise`` (never in a request).

Callbacks are wanted while ConnectWise is connected and review storage is on. One job compares what is wanted with
what is registered and fixes the difference: it registers them when review becomes active (first connect included),
removes them when storage goes off, and when the connection moves (site, company or keys changed) removes them from
the old site with the keys that registered them (best effort, what is left recorded) before registering on the new
one. A failure is recorded with its reason for the settings page and tried again by the periodic sweep's fan-out
(``retry_if_due``) or the "Register again" button. Jobs of one tenant run one at a time (a Redis lock).

Also here: the rescan a deleted time entry or expense asks for when ConnectWise's payload no longer says which
invoice it was on (found in the stored snapshots).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from rq.job import JobStatus
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.audit.log import Actor
from app.billing.limits import review_limit_now
from app.connectwise.connection import credentials, get_connection
from app.jobs.queue import enqueue, fetch_job
from app.jobs.runtime import job
from app.review.callback_state import set_status, state_of, stored_keys
from app.review.callbacks import CallbackError, disable_callbacks, enable_callbacks
from app.review.models import CallbackRegistration, Snapshot
from app.review.rescan import rescan_invoice
from app.review.settings import settings_of
from app.review.snapshots import payloads_of
from app.security.crypto import Keyring
from app.services import Services
from app.tenancy import tenant_session

log = logging.getLogger(__name__)
ACTOR = Actor.system("review callbacks")
# A connection saved twice in a few seconds (a key typed wrong, then right) costs one registration.
SAVE_DELAY_SECONDS = 5
LOCK_SECONDS = 300
MODES = ("sync", "register")  # register: a new registration even when the current one looks right
_PENDING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
# Callback type -> the line collection of the stored payloads that holds records of that type.
LINE_COLLECTIONS = {"time": "time/entries", "expense": "expense/entries"}


def wanted(session: Session, tenant_id: uuid.UUID | str) -> bool:
    """Callbacks are wanted while ConnectWise is connected and review storage is on."""
    return get_connection(session) is not None and settings_of(session, tenant_id).storage_enabled


def difference(session: Session, keyring: Keyring, tenant_id: uuid.UUID | str) -> str | None:
    """How what is registered differs from what is wanted: "missing", "unwanted", "moved" (site or company),
    "keys" (other keys now), "status" (only the recorded status is wrong), or None."""
    conn = get_connection(session)
    want = conn is not None and settings_of(session, tenant_id).storage_enabled
    registered = session.get(CallbackRegistration, uuid.UUID(str(tenant_id)))
    state = state_of(session, tenant_id)
    if registered is None:
        if want:
            return "missing"
        return "status" if state is not None and state.status in ("pending", "registered") else None
    if not want or conn is None:
        return "unwanted"
    if (registered.site, registered.company_id) != (conn.site, conn.company_id):
        return "moved"
    old = stored_keys(keyring, state)
    if old is not None and old != credentials(conn, keyring):
        return "keys"
    return None if state is not None and state.status == "registered" else "status"


def needs_sync(session: Session, keyring: Keyring, tenant_id: uuid.UUID | str) -> bool:
    return difference(session, keyring, tenant_id) is not None


def sync_callbacks(services: Services, tenant_id: str, *, force: bool = False,
                   client_options: dict[str, Any] | None = None) -> str:
    """Bring the callbacks in line with the connection and the storage switch; returns the status they end in."""
    lock = services.redis.lock(f"bi:review:callbacks:{tenant_id}", timeout=LOCK_SECONDS, blocking_timeout=60)
    if not lock.acquire():
        raise RuntimeError("another callbacks job of this tenant is still running")  # RQ records it; retried
    try:
        return _sync(services, tenant_id, force, client_options)
    finally:
        try:
            lock.release()
        except Exception:  # expired while we worked: nothing left to release
            log.warning("review callbacks lock had expired", extra={"event": "review.callbacks_lock_expired"})


def _sync(services: Services, tenant_id: str, force: bool, options: dict[str, Any] | None) -> str:
    with tenant_session(tenant_id, services.session_factory) as session:
        want = wanted(session, tenant_id)
        found = difference(session, services.keyring, tenant_id)
        registered = session.get(CallbackRegistration, uuid.UUID(str(tenant_id))) is not None
        if registered and want and found in (None, "status") and not force:
            set_status(session, tenant_id, "registered")
            return "registered"
    if registered:
        disable_callbacks(services, tenant_id, ACTOR, client_options=options, final=not want)
    if not want:
        if not registered:
            disable_callbacks(services, tenant_id, ACTOR, client_options=options)  # records "off" and why
        return "off"
    try:
        enable_callbacks(services, tenant_id, services.config.BASE_URL, ACTOR, client_options=options)
    except CallbackError:
        log.warning("review callbacks could not be registered", extra={"event": "review.callbacks_failed"})
        return "failed"
    return "registered"


@job
def sync_callbacks_job(services: Services, tenant_id: str, mode: str = "sync") -> str:
    """The worker's run of ``sync_callbacks`` (mode "register": register afresh even when nothing looks wrong)."""
    return sync_callbacks(services, tenant_id, force=mode == "register")


def sync_job_id(tenant_id: str, mode: str = "sync") -> str:
    return f"review-callbacks-{mode}-{tenant_id}"


def _enqueue(services: Services, tenant_id: str, mode: str, delay: int) -> bool:
    """Queue the job unless one of this mode is already waiting (a running one gets one successor)."""
    job_id = sync_job_id(tenant_id, mode)
    for candidate in (job_id, f"{job_id}-next"):
        existing = fetch_job(services.redis, candidate)
        status = existing.get_status() if existing is not None else None
        if status in _PENDING:
            return False
        if status != JobStatus.STARTED:
            job_id = candidate
            break
    else:
        return False
    at = datetime.now(UTC) + timedelta(seconds=delay) if delay else None
    enqueue(services.redis, sync_callbacks_job, tenant_id, mode, queue="connectwise", job_id=job_id, at=at,
            job_timeout=LOCK_SECONDS, result_ttl=3600, failure_ttl=7 * 86400)
    return True


def request_sync(services: Services, tenant_id: uuid.UUID | str, *, mode: str = "sync",
                 session: Session | None = None, delay: int = 0) -> None:
    """Ask for a callbacks job. With ``session`` (a request's, not yet committed) the status reads "pending" in
    that transaction and the job is queued once it has committed, so the job sees what the request saved."""
    if mode not in MODES:
        raise ValueError(f"unknown callbacks mode {mode!r}")
    tid = str(tenant_id)
    if session is None:
        _enqueue(services, tid, mode, delay)
        return
    set_status(session, tid, "pending")

    def queue_it(_session: Session) -> None:
        try:
            _enqueue(services, tid, mode, delay)
        except Exception:  # Redis away: the periodic fan-out finds the "pending" status and queues it then
            log.warning("review callbacks job could not be queued", extra={"event": "review.callbacks_unqueued"})

    event.listen(session, "after_commit", queue_it, once=True)


def request_sync_if_needed(services: Services, session: Session, tenant_id: uuid.UUID | str) -> bool:
    """After the connection was saved in ``session``: queue the job (a few seconds later) when anything changed
    for the callbacks; True when one was asked for."""
    session.flush()
    if not needs_sync(session, services.keyring, tenant_id):
        return False
    request_sync(services, tenant_id, session=session, delay=SAVE_DELAY_SECONDS)
    return True


def retry_if_due(services: Services, session: Session, tenant_id: str) -> bool:
    """The periodic fan-out's step: queue the job when the callbacks are not what they should be (a failure is
    tried again this way); True when one was queued."""
    if not needs_sync(session, services.keyring, tenant_id):
        return False
    return _enqueue(services, tenant_id, "sync", 0)


# --- deleted lines --------------------------------------------------------------------------------------------


def invoice_holding(session: Session, keyring: Keyring, kind: str, line_id: int) -> int | None:
    """The stored invoice one of whose lines is the record ``kind`` ``line_id`` (None: no stored invoice has it)."""
    path = LINE_COLLECTIONS[kind]
    for snapshot in session.execute(select(Snapshot).order_by(Snapshot.invoice_id)).scalars():
        lines = payloads_of(keyring, snapshot).collections.get(path) or ()
        if any(isinstance(line, Mapping) and line.get("id") == line_id for line in lines):
            return snapshot.invoice_id
    return None


@job
def rescan_deleted_line_job(services: Services, tenant_id: str, kind: str, line_id: int) -> dict[str, Any]:
    """Rescan the invoice a deleted line was on, found among the stored snapshots."""
    with tenant_session(tenant_id, services.session_factory) as session:
        invoice_id = invoice_holding(session, services.keyring, kind, int(line_id))
        limit = review_limit_now(session)
    if invoice_id is None:
        return {"outcome": "skipped", "reason": "no stored invoice holds that line"}
    return rescan_invoice(services, tenant_id, invoice_id, review_limit=limit).as_json()


def request_line_rescan(services: Services, tenant_id: str, kind: str, line_id: int) -> None:
    """Queue the rescan of the invoice a deleted line was on (the lookup reads every snapshot: a job's work)."""
    if kind not in LINE_COLLECTIONS:
        raise ValueError(f"no line collection for callback type {kind!r}")
    enqueue(services.redis, rescan_deleted_line_job, tenant_id, kind, int(line_id), queue="connectwise",
            job_id=f"review-deleted-{tenant_id}-{kind}-{int(line_id)}", job_timeout=300, result_ttl=600,
            failure_ttl=86400)
