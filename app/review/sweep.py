"""The full sweep of one tenant: read every open invoice, snapshot what changed, run the rules, keep the flags.

All of ConnectWise is read first (``app.review.fetch``); only then does one transaction write the snapshots, the
flags and the sweep's counts together, under the tenant's review settings row (a purge takes the same lock). So a
ConnectWise outage, revoked keys or malformed data fail the sweep record with a plain reason and leave the
previous snapshots and flags exactly as they were. One invoice that does not reconstruct is recorded as failed
(its reason names a field, never a value) and keeps its previous snapshot and flags; the rest go on.

A snapshot whose content hash and rules digest are both unchanged is not touched (a sweep that finds no change
writes nothing but its record). The rules are ``app.review.rules.evaluate`` unless the caller passes its own; rules
that take ``history`` get the cross-invoice one (``incremental.history_for_write``), and a snapshot's rules digest
then folds in what that history tells the invoice, so it is checked again when that moves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.connectwise import errors as cw_errors
from app.connectwise.connection import get_connection
from app.connectwise.records import InvalidRecord
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.invoices.errors import InvalidInvoiceData
from app.invoices.service import InvoicePayloads, build_document
from app.review import flags as flag_store
from app.review import incremental, snapshots, summary
from app.review.fetch import Failure, OpenInvoices, fetch_open_invoices
from app.review.models import Sweep
from app.review.rules.history import accepts_history
from app.review.settings import locked_row, settings_of
from app.services import Services
from app.tenancy import tenant_session

log = logging.getLogger(__name__)
Evaluate = Callable[..., Sequence[flag_store.FindingLike]]  # (payloads, rule settings or None) -> findings
Progress = Callable[[int, int], None]  # (invoices done, of total)
RULES_VERSION = 1  # bump when a rule changes what it finds, so unchanged snapshots are evaluated again
STORAGE_OFF = "Review storage is turned off for this workspace; nothing was read or stored."
NOT_CONNECTED = "ConnectWise is not connected."
UNEXPECTED = "The sweep failed unexpectedly; we have been told. The previous snapshots and flags are unchanged."


@dataclass
class SweepResult:
    """A sweep's record, as the CLI prints it and the job returns it."""

    kind: str
    outcome: str  # ok | failed | skipped
    reason: str | None = None
    sweep_id: uuid.UUID | None = None
    invoices_seen: int = 0
    invoices_changed: int = 0
    invoices_failed: int = 0
    flags_raised: int = 0
    flags_cleared: int = 0
    snapshots_dropped: int = 0
    cw_requests: int = 0
    seconds: float = 0.0
    failures: list[dict] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"sweep_id": str(self.sweep_id) if self.sweep_id else None, "kind": self.kind,
                "outcome": self.outcome, "reason": self.reason, "invoices_seen": self.invoices_seen,
                "invoices_changed": self.invoices_changed, "invoices_failed": self.invoices_failed,
                "flags_raised": self.flags_raised, "flags_cleared": self.flags_cleared,
                "snapshots_dropped": self.snapshots_dropped, "cw_requests": self.cw_requests,
                "seconds": round(self.seconds, 3), "failures": self.failures}


def default_evaluate() -> Evaluate:
    """The rules engine's ``evaluate``, or no findings while it does not exist."""
    try:
        from app.review.rules import evaluate
    except ImportError:
        return _no_findings
    return evaluate


def _no_findings(payloads: InvoicePayloads, settings: Mapping[str, Any] | None) -> list[flag_store.FindingLike]:
    return []


def rules_digest(evaluate: Evaluate, rule_settings: Mapping[str, Any]) -> str:
    """What the flags were computed with: the rules (by name and version) and the tenant's rule settings."""
    name = f"{getattr(evaluate, '__module__', '')}.{getattr(evaluate, '__qualname__', '')}"
    raw = json.dumps({"rules": name, "version": RULES_VERSION, "settings": rule_settings}, sort_keys=True,
                     default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def run_sweep(services: Services, tenant_id: str, *, kind: str = "full", evaluate: Evaluate | None = None,
              client_options: Mapping[str, Any] | None = None, progress: Progress | None = None,
              review_limit: int | None = None) -> SweepResult:
    """Sweep one tenant now, in the foreground; returns its record (also stored unless storage is off).

    ``kind="incremental"`` reads only what changed since the last successful sweep, and is full whenever
    ``incremental.baseline`` says it must be; ``progress(done, total)`` hears of each invoice written.
    ``review_limit`` (the plan's, from the job entry point; None: unlimited): the sweep is full, reviews the most
    recent that many open invoices (``app.review.plan_limits``) and says so in its record; the others keep what
    they had."""
    evaluate = evaluate or default_evaluate()
    factory, started = services.session_factory, time.monotonic()
    with tenant_session(tenant_id, factory) as session:
        settings = settings_of(session, tenant_id)
        if not settings.storage_enabled:
            return SweepResult(kind, "skipped", STORAGE_OFF)
        # Under a limit every sweep is full: which invoices are the most recent is a question about all of them.
        incremental_ok = kind == "incremental" and review_limit is None
        base = incremental.baseline(session, dt.datetime.now(dt.UTC)) if incremental_ok else None
        kind = "incremental" if base is not None else "full"
        sweep = Sweep(id=uuid.uuid4(), tenant_id=uuid.UUID(str(tenant_id)), kind=kind, outcome="running")
        session.add(sweep)
        connected = get_connection(session) is not None
    result = SweepResult(kind, "running", sweep_id=sweep.id)
    if not connected:
        return _fail(services, tenant_id, result, NOT_CONNECTED, started)
    scope: set[int] | None = None  # the invoices an incremental sweep speaks for; None: all of them
    try:
        with tenant_session(tenant_id, factory) as session:
            client = tenant_client(session, services.keyring, services.config, services.redis, for_page=False,
                                   **dict(client_options or {}))
        with client:
            try:
                if base is None:
                    fetched = fetch_open_invoices(client, incremental.stored_loader(services, tenant_id),
                                                  limit=review_limit)
                else:
                    changed = incremental.fetch_changed(client, base, incremental.stored_loader(services, tenant_id))
                    fetched, scope = changed.fetched, changed.touched
            finally:
                result.cw_requests = client.requests_made
    except NotConnected:
        return _fail(services, tenant_id, result, NOT_CONNECTED, started)
    except cw_errors.ConnectWiseError as exc:
        return _fail(services, tenant_id, result, f"ConnectWise could not be read: {exc}", started)
    except InvalidRecord as exc:
        return _fail(services, tenant_id, result, f"ConnectWise sent data we cannot read: {exc}", started)
    except Exception:
        _fail(services, tenant_id, result, UNEXPECTED, started)
        raise
    try:
        with tenant_session(tenant_id, factory) as session:
            _write(session, services, uuid.UUID(str(tenant_id)), fetched, evaluate, result, scope, progress)
            if scope is not None and result.outcome == "ok":  # a scoped write leaves the record to its caller
                _save(session, uuid.UUID(str(tenant_id)), result, dt.datetime.now(dt.UTC))
    except Exception:
        _fail(services, tenant_id, result, UNEXPECTED, started)
        raise
    result.seconds = time.monotonic() - started
    log.info("review sweep %s: %d seen, %d changed, %d failed, %d requests", result.outcome, result.invoices_seen,
             result.invoices_changed, result.invoices_failed, result.cw_requests,
             extra={"event": "review.sweep", "count": result.invoices_seen})
    return result


def _write(session: Session, services: Services, tid: uuid.UUID, fetched: OpenInvoices, evaluate: Evaluate,
           result: SweepResult, scope: set[int] | None = None, progress: Progress | None = None) -> None:
    """One transaction: snapshots, flags and the sweep's record, or nothing if storage went off meanwhile.

    ``scope``: a rescan of just these invoices (``write_rescan``): no other snapshot is dropped, no sweep record."""
    row = locked_row(session, tid)
    if not row.storage_enabled:
        result.outcome, result.reason = "skipped", STORAGE_OFF
        return
    rule_settings = dict(row.rule_settings or {})
    digest, now = rules_digest(evaluate, rule_settings), dt.datetime.now(dt.UTC)
    failures: list[Failure] = list(fetched.failures)
    existing = snapshots.snapshots_by_invoice(session)
    history, others = (incremental.history_for_write(services.keyring, fetched, existing, scope)
                       if accepts_history(evaluate) else (None, []))
    with_history = {"history": history} if history is not None else {}
    rechecked: set[int] = set()
    for done, payloads in enumerate(fetched.payloads):
        if progress is not None:
            progress(done, len(fetched.payloads))
        iid = payloads.invoice_id
        header = fetched.headers[iid]
        try:
            built = snapshots.Built(payloads, header, build_document(payloads, str(tid)),
                                    snapshots.content_hash(payloads))
        except (InvalidInvoiceData, InvalidRecord) as exc:
            failures.append(Failure(iid, header.number, str(exc)))
            continue
        snap = existing.get(iid)
        same_content = snap is not None and snap.content_hash == built.content_hash
        invoice_digest = history.fold(digest, iid) if history is not None else digest
        if same_content and snap is not None and snap.rules_digest == invoice_digest:
            continue
        try:
            findings = list(evaluate(payloads, rule_settings or None, **with_history))  # None: the defaults
        except Exception as exc:  # a rule's bug costs this invoice its re-check, never the sweep
            log.warning("review rules failed on an invoice: %s", type(exc).__name__,
                        extra={"event": "review.rules_failed"})
            failures.append(Failure(iid, header.number, "The review rules could not check this invoice."))
            continue
        if same_content and snap is not None:
            snap.rules_digest = invoice_digest
        else:
            stored = snapshots.store(session, services.keyring, tid, snap, built, invoice_digest)
            summary.record_content(session, tid, stored, payloads, now)
            result.invoices_changed += 1
        counts = flag_store.apply_findings(session, services.keyring, tid, iid, header.number, findings, now)
        rechecked.add(iid)
        result.flags_raised += counts.raised
        result.flags_cleared += counts.cleared
    for kept in others:  # open invoices a scoped write leaves alone: checked again where their history moved
        snap, invoice_digest = existing[kept.invoice_id], history.fold(digest, kept.invoice_id) if history else digest
        if snap.rules_digest == invoice_digest:
            continue
        try:
            findings = list(evaluate(kept, rule_settings or None, **with_history))
        except Exception as exc:  # as above; the invoice keeps its flags until a sweep can check it
            log.warning("review rules failed on a stored invoice: %s", type(exc).__name__,
                        extra={"event": "review.rules_failed"})
            continue
        snap.rules_digest = invoice_digest
        counts = flag_store.apply_findings(session, services.keyring, tid, snap.invoice_id, snap.invoice_number,
                                           findings, now)
        rechecked.add(snap.invoice_id)
        result.flags_raised += counts.raised
        result.flags_cleared += counts.cleared
    # Held invoices (beyond the plan's limit) are still open: whatever they had stays, read-only.
    still_open = {p.invoice_id for p in fetched.payloads} | {f.invoice_id for f in failures} | set(fetched.held)
    gone = (set(existing) if scope is None else set(existing) & scope) - still_open
    # Snapshots the inbox has never listed (stored before it existed): one query, nearly always empty.
    read_now = {p.invoice_id: p for p in fetched.payloads}
    for iid in sorted(summary.without_rows(session, set(existing) - gone)):
        snap = existing[iid]
        summary.record_content(session, tid, snap, read_now.get(iid) or snapshots.payloads_of(services.keyring, snap),
                               now)
        rechecked.add(iid)
    result.snapshots_dropped = snapshots.drop(session, gone)
    result.flags_cleared += flag_store.clear_invoices(session, gone, now)
    summary.refresh_flags(session, rechecked)
    summary.mark_left(session, gone, now)
    result.invoices_seen = len(fetched.payloads) + len(fetched.failures) + len(fetched.held)
    result.invoices_failed = len(failures)
    if fetched.held:
        reviewed = result.invoices_seen - len(fetched.held)
        result.reason = (f"Plan limit: {reviewed} of {result.invoices_seen} open invoices reviewed (the most recent); "
                         f"the other {len(fetched.held)} were not read.")
    result.failures = [{"invoice_id": f.invoice_id, "invoice_number": f.invoice_number, "reason": f.reason}
                       for f in failures]
    result.outcome = "ok"
    if scope is None:
        _save(session, tid, result, now)


def write_rescan(session: Session, services: Services, tenant_id: uuid.UUID | str, fetched: OpenInvoices,
                 invoice_ids: set[int], evaluate: Evaluate, result: SweepResult) -> None:
    """The sweep's own write for a few invoices: those in ``fetched`` re-snapshotted and re-checked, those of
    ``invoice_ids`` no longer open dropped (their flags cleared); nothing else is touched."""
    _write(session, services, uuid.UUID(str(tenant_id)), fetched, evaluate, result, scope=set(invoice_ids))


def _save(session: Session, tid: uuid.UUID, result: SweepResult, now: dt.datetime) -> None:
    sweep = session.get(Sweep, result.sweep_id) if result.sweep_id else None
    if sweep is None:  # purged by a storage switch off and on while this sweep ran: record it afresh
        sweep = Sweep(id=result.sweep_id or uuid.uuid4(), tenant_id=tid, kind=result.kind, started_at=now)
        session.add(sweep)
    sweep.finished_at, sweep.outcome, sweep.reason = now, result.outcome, result.reason
    sweep.invoices_seen, sweep.invoices_changed = result.invoices_seen, result.invoices_changed
    sweep.invoices_failed, sweep.failures = result.invoices_failed, result.failures
    sweep.flags_raised, sweep.flags_cleared, sweep.cw_requests = (result.flags_raised, result.flags_cleared,
                                                                   result.cw_requests)


def _fail(services: Services, tenant_id: str, result: SweepResult, reason: str, started: float) -> SweepResult:
    """Record the sweep as failed (only its own record changes)."""
    result.outcome, result.reason, result.seconds = "failed", reason, time.monotonic() - started
    with tenant_session(tenant_id, services.session_factory) as session:
        sweep = session.get(Sweep, result.sweep_id) if result.sweep_id else None
        if sweep is not None:  # gone only if storage was turned off meanwhile: then nothing is kept
            sweep.finished_at, sweep.outcome, sweep.reason = dt.datetime.now(dt.UTC), "failed", reason
            sweep.cw_requests = result.cw_requests
    log.warning("review sweep failed", extra={"event": "review.sweep_failed"})
    return result
