"""What the invoice's review page shows beside the panels other modules own: the invoice as the last sweep stored
it, its flags pane (severity, sentence, where to fix it in ConnectWise, Mark as OK), the changed-in-ConnectWise
banner, and the refresh that rescans just this invoice.

Everything here reads our own tables; only ``refresh`` talks to ConnectWise, and only when a person asks.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin
from app.connectwise.connection import get_connection
from app.connectwise.tenant_client import PAGE_OPTIONS
from app.invoices.document import InvoiceDocument
from app.invoices.errors import InvalidInvoiceData
from app.invoices.service import InvoicePayloads, build_document
from app.review import events, snapshots, timeline
from app.review.deeplinks import Deeplink, flag_deeplink
from app.review.events import EventActor
from app.review.flags import OpenFlag, mark_ok, open_flags
from app.review.models import Flag, ReviewInvoice, Snapshot
from app.review.rescan import rescan_invoice
from app.review.rules import RULES
from app.review.times import when
from app.services import Services
from app.tenancy import tenant_session

log = logging.getLogger(__name__)
SEVERITY_LABELS = {"error": "ERROR", "warning": "WARNING", "info": "INFO"}
PAGE_SLEEP_CAP = 2.0  # a refresh a person waits for never sleeps long on a Retry-After


@dataclass(frozen=True)
class Stored:
    """The invoice's review row and, while it is open, its snapshot's payloads and document."""

    row: ReviewInvoice
    snapshot: Snapshot | None
    payloads: InvoicePayloads | None
    document: InvoiceDocument | None
    unreadable: bool = False  # a snapshot that no longer builds (shown as a note, never a 500)

    @property
    def is_open(self) -> bool:
        return self.row.is_open and self.snapshot is not None


@dataclass(frozen=True)
class PaneFlag:
    id: uuid.UUID
    severity: str
    label: str  # ERROR | WARNING | INFO
    rule_name: str
    sentence: str
    marked_ok: bool
    marked_ok_when: str
    deeplink: Deeplink | None


def load(session: Session, keyring: Any, tenant_id: uuid.UUID | str, invoice_id: int) -> Stored | None:
    """The invoice's review as stored; None when it has never been in review (or is another tenant's: RLS)."""
    row = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == invoice_id)).scalar_one_or_none()
    if row is None:
        return None
    snap = session.execute(select(Snapshot).where(Snapshot.invoice_id == invoice_id)).scalar_one_or_none()
    if snap is None:
        return Stored(row, None, None, None)
    try:
        payloads = snapshots.payloads_of(keyring, snap)
        document = build_document(payloads, str(tenant_id))
    except (ValueError, InvalidInvoiceData):  # InvalidRecord is a ValueError too
        log.warning("a stored review snapshot does not build", extra={"event": "review.snapshot_unreadable"})
        return Stored(row, snap, None, None, unreadable=True)
    return Stored(row, snap, payloads, document)


# -- the flags pane ----------------------------------------------------------------------------------------------


def _flags_of(session: Session, keyring: Any, row: ReviewInvoice) -> list[OpenFlag]:
    return [f for f in open_flags(session, keyring, row.invoice_number) if f.invoice_id == row.invoice_id]


def flags_pane(session: Session, services: Services, stored: Stored, tz: dt.tzinfo, *, can_mark: bool,
               can_configure: bool) -> dict[str, Any]:
    """What ``review/_flags_pane.html`` shows: the invoice's open flags, worst first, each with its deeplink."""
    conn = get_connection(session)
    header: Mapping[str, Any] = stored.payloads.header if stored.payloads else {}
    collections: Mapping[str, Any] = stored.payloads.collections if stored.payloads else {}
    flags = []
    for f in _flags_of(session, services.keyring, stored.row) if stored.is_open else []:
        link = (flag_deeplink(conn.site, conn.company_id, f.target_type, f.target_id, header, collections)
                if conn is not None else None)
        name = RULES[f.rule].name if f.rule in RULES else f.rule.replace("_", " ").capitalize()
        flags.append(PaneFlag(f.id, f.severity, SEVERITY_LABELS.get(f.severity, f.severity.upper()), name,
                              f.message, f.marked_ok, when(f.marked_ok_at, tz) if f.marked_ok_at else "", link))
    return {"invoice_id": stored.row.invoice_id, "flags": flags, "open": stored.is_open, "can_mark": can_mark,
            "can_configure": can_configure, "left": len([f for f in flags if not f.marked_ok])}


def set_flag_ok(session: Session, keyring: Any, tenant_id: uuid.UUID | str, invoice_id: int, flag_id: uuid.UUID,
                ok: bool, user: Any, actor: Actor, user_id: uuid.UUID | None, origin: Origin) -> bool | None:
    """Mark one of the invoice's open flags OK (or undo it): audited, a timeline entry, the inbox row recounted.

    None: no such open flag on this invoice. False: it was already so (nothing recorded). True: changed."""
    flag = session.execute(select(Flag).where(Flag.id == flag_id, Flag.invoice_id == invoice_id,
                                              Flag.cleared_at.is_(None))).scalar_one_or_none()
    if flag is None:
        return None
    if (flag.marked_ok_at is not None) == ok:
        return False
    mark_ok(session, tenant_id, flag.id, actor, user_id, ok=ok, origin=origin)
    events.add(session, keyring, tenant_id, invoice_id, "flag_marked_ok" if ok else "flag_unmarked",
               EventActor.for_user(user), detail={"rule": flag.rule, "severity": flag.severity,
                                                  "target": f"{flag.target_type} {flag.target_id}"})
    return True


# -- the banner and its refresh ----------------------------------------------------------------------------------


def ago(moment: dt.datetime, now: dt.datetime | None = None, tz: dt.tzinfo = dt.UTC) -> str:
    """ "just now", "3 minutes ago", "2 hours ago", else the day as the timeline says it."""
    now = now or dt.datetime.now(dt.UTC)
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    if seconds < 86400:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    return when(moment, tz, now)


def banner(stored: Stored, tz: dt.tzinfo, *, can_refresh: bool, error: str | None = None,
           now: dt.datetime | None = None) -> dict[str, Any]:
    """What ``review/_banner.html`` shows: how fresh the snapshot is, whether ConnectWise changed the invoice
    since, the refresh (for those who may run sweeps) and the reason the last refresh failed, if it did."""
    snap, row = stored.snapshot, stored.row
    changed = bool(snap is not None and row.cw_changed_at is not None and row.cw_changed_at > snap.snapshot_at)
    return {"invoice_id": row.invoice_id, "open": stored.is_open, "changed": changed,
            "changed_ago": ago(row.cw_changed_at, now, tz) if changed and row.cw_changed_at else "",
            "snapshot_when": when(snap.snapshot_at, tz, now) if snap is not None else "",
            "can_refresh": can_refresh, "error": error}


@dataclass(frozen=True)
class Refreshed:
    ok: bool
    reason: str | None = None
    changed: bool = False
    flags_raised: int = 0
    flags_cleared: int = 0
    still_open: bool = True
    activity_added: int = 0
    cw_requests: int = 0
    seconds: float = 0.0


def _capped_sleep(seconds: float) -> None:
    time.sleep(min(seconds, PAGE_SLEEP_CAP))


def page_client_options(services: Services) -> dict[str, Any]:
    """A rescan's client tuned like a page's: short waits for a budget slot, one retry, the page deadline."""
    config = services.config
    return {**PAGE_OPTIONS, "sleep": _capped_sleep, "max_wait": config.CONNECTWISE_PAGE_WAIT_SECONDS,
            "deadline": config.CONNECTWISE_PAGE_DEADLINE_SECONDS}


def refresh(services: Services, tenant_id: str, invoice_id: int,
            client_options: Mapping[str, Any] | None = None) -> Refreshed:
    """Rescan just this invoice now (the sweep's read and write for one invoice), answer the banner, then read its
    ConnectWise audit trail for the timeline. A failed rescan changes nothing stored and says why."""
    started, began = time.monotonic(), dt.datetime.now(dt.UTC)
    result = rescan_invoice(services, tenant_id, int(invoice_id),
                            client_options=client_options if client_options is not None
                            else page_client_options(services))
    if result.outcome != "ok":
        return Refreshed(False, result.reason or "The invoice could not be refreshed.", cw_requests=result.cw_requests,
                         seconds=time.monotonic() - started)
    with tenant_session(tenant_id, services.session_factory) as session:
        # Our read started after these notes: it has seen what they announced. A note that came in during the read
        # may not be in it, so that one keeps its banner.
        session.execute(update(ReviewInvoice).where(ReviewInvoice.invoice_id == int(invoice_id),
                                                    ReviewInvoice.cw_changed_at <= began)
                        .values(cw_changed_at=None))
    still_open = result.snapshots_dropped == 0
    # The audit trail's own failure is kept by the timeline, which says so above what it has.
    added = timeline.fetch_connectwise(services, tenant_id, int(invoice_id)) if still_open else 0
    return Refreshed(True, changed=result.invoices_changed > 0, flags_raised=result.flags_raised,
                     flags_cleared=result.flags_cleared, still_open=still_open, activity_added=added,
                     cw_requests=result.cw_requests, seconds=time.monotonic() - started)
