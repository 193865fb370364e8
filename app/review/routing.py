"""Seeding reviewers from ConnectWise invoice routing, once per invoice (issue 12).

After a sweep or a rescan, ``request_routing`` queues ``seed_routing_job`` (queue ``connectwise``) when open invoices
in review have never had their routing read (``ReviewInvoice.routing_seeded_at`` null). The job reads
``finance/invoices/{id}/routings`` for each of them (ConnectWise offers no way to read several invoices' routing at
once), resolves the members it names to users by ``users.cw_member_id`` and the rest by ``system/members`` (``id in
(...)``, 200 a request, for the name and whether the member is still active), and writes each invoice's reviewers
with ``routing_seeded_at`` in the same transaction. So seeding happens once: a reviewer removed later is never
re-added, whatever later sweeps see. Inactive users and inactive members are not seeded (they could never review).

Polite by construction: the sweep has already written its snapshots and flags when this job is queued, so the
first sweep's flags show while routing is still being read; and routing may spend at most HALF of the tenant's
ConnectWise request ceiling. Each of its requests first takes a slot in a sliding window of its own holding half
the tenant's per-minute limit (``RoutingShare``), then one in the tenant's shared budget as every request does; the
other half always remains for pages, sweeps and rescans. At most ``CONCURRENCY`` requests are in flight.

A ConnectWise failure leaves the invoices it touched unseeded for a later try (the next sweep queues the job again)
and is logged by error class and counts only; an invoice that ConnectWise no longer has (404) is skipped the same
way, and leaves review with the next sweep.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import Actor, record
from app.connectwise import errors as cw_errors
from app.connectwise.client import IN_CHUNK, Client
from app.connectwise.ratelimit import RequestBudget
from app.connectwise.records import ROUTING_FIELDS, InvalidRecord, Member, RoutingRecord
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.jobs.queue import enqueue, fetch_job
from app.jobs.runtime import job
from app.review import reviewers
from app.review.models import Reviewer, ReviewInvoice
from app.review.settings import settings_of
from app.security.crypto import Keyring
from app.services import Services
from app.tenancy import tenant_session
from app.users.models import User

log = logging.getLogger(__name__)
SHARE = 0.5  # of the tenant's requests per minute
CONCURRENCY = 4
CHUNK = 50  # invoices read, then written in one transaction
MEMBER_FIELDS = ("id", "identifier", "firstName", "lastName", "inactiveFlag")
ACTOR = Actor.system("review routing")
_PENDING = ("queued", "deferred", "scheduled")
# The share's own window is keyed by a site name no request ever uses, so it never counts against the host's valve.
_SHARE_KEY = "routing-share:"


class RoutingShare(RequestBudget):
    """A slot in routing's own window (``share`` of the tenant's limit), then one in the shared budget."""

    def __init__(self, shared: RequestBudget, share: float = SHARE):
        super().__init__(shared.redis, max(1, int(shared.limit * share)), shared.window, shared.max_wait)
        self.shared = shared

    def acquire(self, site: str, company_id: str = "", *, max_wait: float | None = None) -> float:
        allowed = self.max_wait if max_wait is None else max_wait
        waited = super().acquire(_SHARE_KEY + site, company_id, max_wait=allowed)
        return waited + self.shared.acquire(site, company_id, max_wait=max(0.0, allowed - waited))


@dataclass
class RoutingResult:
    """What one run did, as the job returns it and the benchmark prints it (counts only)."""

    outcome: str = "ok"  # ok | failed | skipped
    reason: str | None = None
    invoices_pending: int = 0
    invoices_seeded: int = 0
    reviewers_added: int = 0
    invoices_left: int = 0  # still unseeded after this run (a failure, or gone from ConnectWise)
    cw_requests: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reason": self.reason, "invoices_pending": self.invoices_pending,
                "invoices_seeded": self.invoices_seeded, "reviewers_added": self.reviewers_added,
                "invoices_left": self.invoices_left, "cw_requests": self.cw_requests,
                "seconds": round(self.seconds, 3), "errors": dict(self.errors)}


def unseeded(session: Session) -> list[int]:
    """Open invoices in review whose routing has never been read, oldest id first."""
    return list(session.execute(select(ReviewInvoice.invoice_id).where(
        ReviewInvoice.is_open, ReviewInvoice.routing_seeded_at.is_(None)).order_by(ReviewInvoice.invoice_id)).scalars())


@dataclass(frozen=True)
class _Read:
    invoice_id: int
    rows: list[RoutingRecord] | None  # None: the read failed
    error: str | None = None


def _read_routing(client: Client, invoice_id: int) -> _Read:
    try:
        raw = client.get_all(f"finance/invoices/{invoice_id}/routings", fields=ROUTING_FIELDS, cache=False)
        return _Read(invoice_id, [RoutingRecord.parse(r, tolerant=True) for r in raw])
    except cw_errors.ConnectWiseError as exc:
        return _Read(invoice_id, None, type(exc).__name__)
    except InvalidRecord:
        return _Read(invoice_id, None, "InvalidRecord")


def _members(client: Client, member_ids: Sequence[int]) -> dict[int, Member]:
    ids = sorted(set(member_ids))
    found: dict[int, Member] = {}
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start:start + IN_CHUNK]
        raw = client.get_all("system/members", conditions=f"id in ({','.join(str(i) for i in chunk)})",
                             fields=MEMBER_FIELDS)
        for member in (Member.from_api(r) for r in raw):
            if member is not None:
                found[member.id] = member
    return found


def _users(session: Session, member_ids: set[int]) -> dict[int, User]:
    """The users linked to these ConnectWise members, by member id."""
    if not member_ids:
        return {}
    found = session.execute(select(User).where(User.cw_member_id.in_(sorted(member_ids)))).scalars()
    return {u.cw_member_id: u for u in found if u.cw_member_id is not None}


def _people(rows: Sequence[RoutingRecord], users: Mapping[int, User], members: Mapping[int, Member]
            ) -> list[reviewers.Routed]:
    """The routing's members in ConnectWise's order, once each, as users where linked; inactive ones left out."""
    people: list[reviewers.Routed] = []
    seen: set[int] = set()
    for row in sorted(rows, key=lambda r: (r.sequence if r.sequence is not None else 1 << 30, r.id)):
        if row.member_id is None or row.member_id in seen:
            continue
        seen.add(row.member_id)
        user = users.get(row.member_id)
        if user is not None:
            if user.active:
                people.append(reviewers.Routed(row.member_id, user.id, reviewers.user_name(user)))
            continue
        member = members.get(row.member_id)
        if member is None or not member.active:
            continue  # gone from ConnectWise, or no longer working there
        name = member.name or row.member_name or member.identifier or row.member_identifier
        people.append(reviewers.Routed(row.member_id, None, name or f"Member {row.member_id}"))
    return people


def _write(session: Session, keyring: Keyring, tid: uuid.UUID, reads: Sequence[_Read], users: Mapping[int, User],
           members: Mapping[int, Member], now: dt.datetime, result: RoutingResult) -> None:
    """Seed the invoices read, each once: rows are locked and re-checked, so a concurrent run cannot seed twice."""
    done = {r.invoice_id: r for r in reads if r.rows is not None}
    if not done:
        return
    rows = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id.in_(sorted(done)),
                                                       ReviewInvoice.routing_seeded_at.is_(None))
                           .order_by(ReviewInvoice.invoice_id).with_for_update()).scalars().all()
    existing: dict[int, list[Reviewer]] = {}
    for reviewer in session.execute(select(Reviewer).where(Reviewer.invoice_id.in_([r.invoice_id for r in rows]))
                                    ).scalars() if rows else ():
        existing.setdefault(reviewer.invoice_id, []).append(reviewer)
    seeded: dict[str, list[str]] = {}
    for inbox in rows:
        read = done[inbox.invoice_id]
        names = reviewers.seed(session, keyring, tid, inbox.invoice_id, _people(read.rows or [], users, members), now,
                               existing.get(inbox.invoice_id, []))
        inbox.routing_seeded_at = now
        result.invoices_seeded += 1
        result.reviewers_added += len(names)
        if names:
            seeded[str(inbox.invoice_id)] = names
    if seeded:
        # One audit row per chunk naming each invoice's new reviewers: one per invoice cost ~25 ms apiece.
        record(session, tid, ACTOR, "review.reviewers_seeded", target_type="invoices",
               after={"invoices": seeded, "source": "connectwise routing"})


def seed_routing(services: Services, tenant_id: str, *, client_options: Mapping[str, Any] | None = None
                 ) -> RoutingResult:
    """Read the routing of every unseeded open invoice and seed its reviewers; a failure stops the run politely."""
    result, started = RoutingResult(), time.monotonic()
    tid = uuid.UUID(str(tenant_id))
    factory = services.session_factory
    try:
        with tenant_session(tid, factory) as session:
            if not settings_of(session, tid).storage_enabled:
                return _finish(result, started, "skipped", "Review storage is turned off for this workspace.")
            pending = unseeded(session)
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
    known: dict[int, Member] = {}
    try:
        with client:
            for start in range(0, len(pending), CHUNK):
                chunk = pending[start:start + CHUNK]
                reads: list[_Read] = client.parallel([partial(_read_routing, client, i) for i in chunk])
                for r in reads:
                    if r.error:
                        result.errors[r.error] = result.errors.get(r.error, 0) + 1
                member_ids = {row.member_id for r in reads for row in (r.rows or []) if row.member_id is not None}
                with tenant_session(tid, factory) as session:
                    linked = set(_users(session, member_ids))
                wanted = sorted(member_ids - linked - known.keys())
                if wanted:  # outside any transaction: none stays open across a ConnectWise round trip
                    known.update(_members(client, wanted))
                with tenant_session(tid, factory) as session:
                    _write(session, services.keyring, tid, reads, _users(session, member_ids), known,
                           dt.datetime.now(dt.UTC), result)
                # A per-invoice 404 is that invoice's; anything else (keys, permission, outage, budget) is the
                # account's, and the rest would only fail the same way.
                if any(r.error and r.error != "NotFound" for r in reads):
                    result.outcome = "failed"
                    break
    except cw_errors.ConnectWiseError as exc:
        result.outcome = "failed"
        result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
    finally:
        result.cw_requests = client.requests_made
    result.invoices_left = result.invoices_pending - result.invoices_seeded
    if result.outcome == "failed":
        result.reason = "ConnectWise could not be read: " + ", ".join(sorted(result.errors))
        log.warning("review routing stopped: %d of %d invoices seeded, errors %s", result.invoices_seeded,
                    result.invoices_pending, sorted(result.errors), extra={"event": "review.routing_failed"})
    else:
        log.info("review routing: %d invoices seeded, %d reviewers, %d left, %d requests", result.invoices_seeded,
                 result.reviewers_added, result.invoices_left, result.cw_requests, extra={"event": "review.routing"})
    return _finish(result, started, result.outcome, result.reason)


def _finish(result: RoutingResult, started: float, outcome: str = "ok", reason: str | None = None) -> RoutingResult:
    result.outcome, result.reason, result.seconds = outcome, reason, time.monotonic() - started
    return result


@job
def seed_routing_job(services: Services, tenant_id: str) -> dict[str, Any]:
    """The worker's routing seeding for one tenant; returns the run's counts."""
    return seed_routing(services, tenant_id).as_json()


def routing_job_id(tenant_id: str) -> str:
    return f"review-routing-{tenant_id}"


def request_routing(services: Services, tenant_id: str) -> bool:
    """Queue the tenant's routing seeding when some open invoice still waits for it and no run is already waiting;
    True when queued now. A run already going gets one follower, for invoices written after it listed its own."""
    with tenant_session(tenant_id, services.session_factory) as session:
        waiting = session.execute(select(ReviewInvoice.id).where(
            ReviewInvoice.is_open, ReviewInvoice.routing_seeded_at.is_(None)).limit(1)).first() is not None
    if not waiting:
        return False
    job_id = routing_job_id(tenant_id)
    for candidate in (job_id, f"{job_id}-next"):
        existing = fetch_job(services.redis, candidate)
        status = existing.get_status() if existing is not None else None
        if status in _PENDING:
            return False
        if status != "started":
            job_id = candidate
            break
    else:
        return False
    enqueue(services.redis, seed_routing_job, tenant_id, queue="connectwise", job_id=job_id, job_timeout=3600,
            result_ttl=3600, failure_ttl=7 * 86400)
    return True
