"""Agreement additions and payments for the snapshots a full sweep stored without them, read by a job of their own.

ConnectWise serves both only under their parent: a request per agreement (its additions) and per credited or paid
invoice (its payments). On a tenant's first sweep that is most of its requests, and neither changes a flag, only
the document (``app.review.fetch``). So the sweep stores an invoice new to review without them, and the sweep job
runs ``fill_details`` once the sweep has written its snapshots and flags (they show meanwhile, the documents with
ConnectWise's agreement amount and credit figures as single lines). It reads each parent once, at most
``CONCURRENCY`` at a time and within the background share of the tenant's request ceiling (routing's
``RoutingShare``: the two background readers together never take more than half of it), then writes them into
those snapshots through the sweep's own write (``write_rescan``: document, content hash, flags and inbox row
together, under the settings lock). Each snapshot is merged afresh under that lock, so a newer read of the invoice
is kept; one that no longer names the parent read is left alone. A ConnectWise failure writes nothing; the next
full sweep tries again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.connectwise import errors as cw_errors
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.invoices.errors import InvalidInvoiceData
from app.invoices.payloads import parse_header
from app.invoices.service import InvoicePayloads, references_of
from app.review.fetch import PER_PARENT, OpenInvoices, per_parent_call
from app.review.models import Snapshot
from app.review.routing import RoutingShare
from app.review.settings import locked_row, settings_of
from app.review.snapshots import payloads_of
from app.review.sweep import Evaluate, SweepResult, default_evaluate, write_rescan
from app.security.crypto import DecryptionError, Keyring
from app.services import Services
from app.tenancy import tenant_session

log = logging.getLogger(__name__)
CONCURRENCY = 4


@dataclass
class DetailsResult:
    """What one run did, as the job returns it and the benchmark prints it (counts only)."""

    outcome: str = "ok"  # ok | failed | skipped
    reason: str | None = None
    invoices_pending: int = 0
    invoices_filled: int = 0
    cw_requests: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reason": self.reason, "invoices_pending": self.invoices_pending,
                "invoices_filled": self.invoices_filled, "cw_requests": self.cw_requests,
                "seconds": round(self.seconds, 3)}


def missing(payloads: InvoicePayloads) -> dict[str, int]:
    """The per-parent references (name -> parent id) these payloads name but do not hold."""
    try:
        refs = references_of(payloads)
    except InvalidInvoiceData:
        return {}
    return {name: refs[name] for name in PER_PARENT if name in refs and name not in payloads.collections}


def _pending(session: Session, keyring: Keyring, invoice_ids: list[int] | None = None,
             ) -> dict[int, tuple[InvoicePayloads, dict[str, int]]]:
    """The stored payloads that lack a per-parent reference, with what they lack, by invoice id."""
    query = select(Snapshot).order_by(Snapshot.invoice_id)
    if invoice_ids is not None:
        query = query.where(Snapshot.invoice_id.in_(invoice_ids))
    out: dict[int, tuple[InvoicePayloads, dict[str, int]]] = {}
    for snap in session.execute(query).scalars():
        try:
            payloads = payloads_of(keyring, snap)
        except (DecryptionError, ValueError):  # the sweep records such a snapshot's invoice; nothing to add here
            continue
        lacking = missing(payloads)
        if lacking:
            out[snap.invoice_id] = (payloads, lacking)
    return out


def fill_details(services: Services, tenant_id: str, *, evaluate: Evaluate | None = None,
                 client_options: Mapping[str, Any] | None = None) -> DetailsResult:
    """Read what the stored snapshots lack and write it into them; a ConnectWise failure writes nothing."""
    result, started = DetailsResult(), time.monotonic()
    tid = uuid.UUID(str(tenant_id))
    factory = services.session_factory
    try:
        with tenant_session(tid, factory) as session:
            if not settings_of(session, tid).storage_enabled:
                return _finish(result, started, "skipped", "Review storage is turned off for this workspace.")
            pending = _pending(session, services.keyring)
            result.invoices_pending = len(pending)
            if not pending:
                return _finish(result, started)
            options = {"concurrency": CONCURRENCY, **dict(client_options or {})}
            client = tenant_client(session, services.keyring, services.config, services.redis, for_page=False,
                                   **options)
    except NotConnected:
        return _finish(result, started, "skipped", "ConnectWise is not connected.")
    if client.rate_limiter is not None:
        client.rate_limiter = RoutingShare(client.rate_limiter)
    wanted = sorted({(name, ref) for _payloads, lacking in pending.values() for name, ref in lacking.items()})
    try:
        with client:
            try:
                read = dict(zip(wanted, client.parallel([per_parent_call(client, n, r) for n, r in wanted]),
                                strict=True))
            finally:
                result.cw_requests = client.requests_made
    except cw_errors.ConnectWiseError as exc:
        log.warning("review details stopped: %s", type(exc).__name__, extra={"event": "review.details_failed"})
        return _finish(result, started, "failed", f"ConnectWise could not be read: {exc}")
    with tenant_session(tid, factory) as session:
        _write(session, services, tid, read, sorted(pending), evaluate or default_evaluate(), result)
    log.info("review details: %d of %d invoices filled, %d requests", result.invoices_filled,
             result.invoices_pending, result.cw_requests, extra={"event": "review.details"})
    return _finish(result, started, result.outcome, result.reason)


def _write(session: Session, services: Services, tid: uuid.UUID, read: Mapping[tuple[str, int], Any],
           invoice_ids: list[int], evaluate: Evaluate, result: DetailsResult) -> None:
    """Merge what was read into the snapshots that still lack it, under the sweep's lock, through its write."""
    locked_row(session, tid)  # taken before the snapshots are read again: no sweep or rescan writes in between
    merged = OpenInvoices()
    for iid, (payloads, lacking) in _pending(session, services.keyring, invoice_ids).items():
        found = {name: read[(name, ref)] for name, ref in lacking.items() if (name, ref) in read}
        if not found:
            continue
        filled = InvoicePayloads(iid, payloads.header_json(), {**payloads.collections_json(), **found})
        try:
            merged.headers[iid] = parse_header(filled.header_json())
        except InvalidInvoiceData:
            continue
        merged.payloads.append(filled)
    if not merged.payloads:
        return
    written = SweepResult("details", "running")
    write_rescan(session, services, tid, merged, {p.invoice_id for p in merged.payloads}, evaluate, written)
    if written.outcome != "ok":
        result.outcome, result.reason = written.outcome, written.reason
    result.invoices_filled = written.invoices_changed


def _finish(result: DetailsResult, started: float, outcome: str = "ok", reason: str | None = None) -> DetailsResult:
    result.outcome, result.reason, result.seconds = outcome, reason, time.monotonic() - started
    return result
