"""Rescanning one invoice (what a ConnectWise callback asks for): re-read it, re-snapshot it, re-run its rules.

The read is the sweep's (``fetch_invoices``: the billing statuses, the header, then lines in one round, with the
references and agreement history carried from the invoice's snapshot while it names the same ones, as an
incremental sweep does) and so is the write (``write_rescan``: the sweep's per-invoice snapshot and flag logic, in
one transaction under the tenant's settings lock, with the history built from the fresh payloads and every other
stored snapshot; another open invoice whose part of it moved is checked again too). An invoice that is no longer
open loses its snapshot and its open flags. A ConnectWise failure changes nothing; the periodic sweep is the safety
net.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from app.billing.limits import review_limit_now
from app.connectwise import errors as cw_errors
from app.connectwise.records import InvalidRecord
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.jobs.queue import enqueue, fetch_job
from app.jobs.runtime import job
from app.review import plan_limits
from app.review.fetch import fetch_invoices
from app.review.incremental import stored_loader
from app.review.routing import request_routing
from app.review.settings import settings_of
from app.review.sweep import NOT_CONNECTED, STORAGE_OFF, Evaluate, SweepResult, default_evaluate, write_rescan
from app.services import Services
from app.tenancy import tenant_session

log = logging.getLogger(__name__)
BEYOND_LIMIT = "Beyond the plan's review limit: the invoice is read-only and was not read again."
_PENDING = ("queued", "deferred", "scheduled")


def rescan_invoice(services: Services, tenant_id: str, invoice_id: int, *, evaluate: Evaluate | None = None,
                   client_options: Mapping[str, Any] | None = None, review_limit: int | None = None) -> SweepResult:
    """Rescan one invoice now; the result counts like a sweep's (``kind`` "rescan", never stored as a sweep).
    An invoice beyond the plan's ``review_limit`` (read-only) is skipped: it keeps what it had."""
    evaluate = evaluate or default_evaluate()
    result, started = SweepResult("rescan", "running"), time.monotonic()
    try:
        with tenant_session(tenant_id, services.session_factory) as session:
            if not settings_of(session, tenant_id).storage_enabled:
                return SweepResult("rescan", "skipped", STORAGE_OFF)
            if not plan_limits.is_reviewable(session, int(invoice_id), review_limit):
                return SweepResult("rescan", "skipped", BEYOND_LIMIT)
            client = tenant_client(session, services.keyring, services.config, services.redis, for_page=False,
                                   **dict(client_options or {}))
        with client:
            try:
                fetched = fetch_invoices(client, [int(invoice_id)], stored_loader(services, tenant_id))
            finally:
                result.cw_requests = client.requests_made
    except NotConnected:
        return _failed(result, NOT_CONNECTED, started)
    except cw_errors.ConnectWiseError as exc:
        return _failed(result, f"ConnectWise could not be read: {exc}", started)
    except InvalidRecord as exc:
        return _failed(result, f"ConnectWise sent data we cannot read: {exc}", started)
    with tenant_session(tenant_id, services.session_factory) as session:
        write_rescan(session, services, tenant_id, fetched, {int(invoice_id)}, evaluate, result)
    result.seconds = time.monotonic() - started
    log.info("review rescan %s: %d changed, %d flags raised, %d cleared", result.outcome, result.invoices_changed,
             result.flags_raised, result.flags_cleared, extra={"event": "review.rescan"})
    return result


def _failed(result: SweepResult, reason: str, started: float) -> SweepResult:
    result.outcome, result.reason, result.seconds = "failed", reason, time.monotonic() - started
    log.warning("review rescan failed", extra={"event": "review.rescan_failed"})
    return result


@job
def rescan_invoice_job(services: Services, tenant_id: str, invoice_id: int) -> dict[str, Any]:
    """The worker's rescan of one invoice; returns the result's record."""
    with tenant_session(tenant_id, services.session_factory) as session:
        limit = review_limit_now(session)
    result = rescan_invoice(services, tenant_id, int(invoice_id), review_limit=limit)
    request_routing(services, tenant_id)  # an invoice new to review gets its reviewers from ConnectWise routing
    return result.as_json()


def rescan_job_id(tenant_id: str, invoice_id: int) -> str:
    return f"review-rescan-{tenant_id}-{int(invoice_id)}"


def request_rescan(services: Services, tenant_id: str, invoice_id: int) -> bool:
    """Queue a rescan of the invoice on ``connectwise`` unless one is already waiting; True when queued now.

    A rescan already running is not enough: the change that asked for this one may have landed after its read."""
    job_id = rescan_job_id(tenant_id, invoice_id)
    for candidate in (job_id, f"{job_id}-next"):  # "-next" follows one that is running
        existing = fetch_job(services.redis, candidate)
        status = existing.get_status() if existing is not None else None
        if status in _PENDING:
            return False
        if status != "started":
            job_id = candidate
            break
    else:
        return False  # both running: the second read starts after this change landed
    enqueue(services.redis, rescan_invoice_job, tenant_id, int(invoice_id), queue="connectwise", job_id=job_id,
            job_timeout=300, result_ttl=600, failure_ttl=86400)
    return True
