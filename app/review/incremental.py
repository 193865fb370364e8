"""The incremental sweep's reading: only the invoices ConnectWise changed since the last successful sweep.

Polls in one parallel round ask for what changed (``lastUpdated`` after the last successful sweep's start, less
``OVERLAP`` for clock skew): invoices, and the product and time lines that sit on an invoice, every sweep; expense
lines once an hour (``expenses_since``). That is three requests when nothing changed, where ConnectWise gives no
way to ask two collections in one. Expenses are the ones polled less often: ConnectWise calls back on an expense
change (``app.review.callbacks`` registers Expense callbacks; product lines have no callback type, so products are
polled every time), they are the fewest lines, and the nightly full sweep reads them all; without callbacks an
expense change reaches review within the hour. The first successful sweep of each clock hour polls them, since the
first successful sweep of the hour before that had one (derived from the sweep records, so a failed sweep never
loses a change).

The invoices the polls touch are read again (headers by id, their lines by invoice id; ``fetch.read_invoices``);
the reference records a touched invoice names (company, billing setup, tax code, ...) and its agreement history are
carried from its stored snapshot while it names the same ones, as those records are not polled (the nightly full
sweep refreshes them). Payments are read again whenever the invoice's paid amounts moved. Touched invoices that are
no longer open, or gone, are what the sweep drops. Billing statuses are read only when a changed invoice carries a
status no snapshot has: every status a snapshot holds was open when it was taken.

``history_for_write`` gives the rules their cross-invoice history in every write: the fresh payloads and, for a
scoped write (incremental, rescan), the stored payloads of every other open invoice, which are checked again when
what the history tells them moved (a duplicate time entry on a touched invoice flags the untouched one too).

``baseline`` says when a sweep must be full instead: no successful sweep or snapshot yet, or no full sweep for a day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.connectwise.client import Client
from app.invoices.service import LINE_FIELDS, REFERENCES, InvoicePayloads
from app.review.conditions import id_conditions
from app.review.fetch import OpenInvoices, Reuse, StoredLoader, by_id, open_status_ids, read_invoices, request_room
from app.review.models import Snapshot, Sweep
from app.review.rules.history import History, build_history
from app.review.snapshots import payloads_of
from app.security.crypto import DecryptionError, Keyring
from app.services import Services
from app.tenancy import tenant_session

OVERLAP = dt.timedelta(minutes=2)
FULL_EVERY = dt.timedelta(hours=24)
EXPENSES_EVERY = dt.timedelta(hours=1)  # the clock period whose first successful sweep polls expense lines


@dataclass(frozen=True)
class Baseline:
    """Where an incremental sweep starts: read from the database before ConnectWise is asked."""

    since: dt.datetime
    open_status_ids: frozenset[int]
    known: frozenset[int]  # invoices with a snapshot
    retry: frozenset[int]  # invoices the last successful sweep could not read
    expenses_since: dt.datetime | None = None  # None: expense lines were polled already this hour


@dataclass
class Changed:
    fetched: OpenInvoices = field(default_factory=OpenInvoices)
    touched: set[int] = field(default_factory=set)  # every invoice this sweep speaks for: re-read, left, or gone


def baseline(session: Session, now: dt.datetime) -> Baseline | None:
    """What an incremental sweep needs, or None when the sweep must be full."""
    ok = select(Sweep).where(Sweep.outcome == "ok").order_by(Sweep.started_at.desc()).limit(1)
    last = session.execute(ok).scalar_one_or_none()
    last_full = session.execute(ok.where(Sweep.kind == "full")).scalar_one_or_none()
    if last is None or last_full is None or last_full.started_at < now - FULL_EVERY:
        return None
    rows = session.execute(select(Snapshot.invoice_id, Snapshot.status_id)).all()
    if not rows:
        return None
    retry = {f["invoice_id"] for f in last.failures or () if isinstance(f, dict) and isinstance(f.get("invoice_id"), int)}
    return Baseline(last.started_at - OVERLAP, frozenset(s for _, s in rows if s is not None),
                    frozenset(i for i, _ in rows), frozenset(retry), _expenses_since(session, now, last.started_at))


def _period(moment: dt.datetime) -> dt.datetime:
    """The start of the ``EXPENSES_EVERY`` clock period holding ``moment`` (UTC)."""
    seconds = int(EXPENSES_EVERY.total_seconds())
    return dt.datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, dt.UTC)


def _expenses_since(session: Session, now: dt.datetime, last_ok: dt.datetime) -> dt.datetime | None:
    """When to poll expense lines from, or None when a successful sweep of this period already did.

    The first successful sweep of a period polls them (a full one reads them all), so the changes not yet seen are
    those since the first successful sweep of the last period that had one."""
    if _period(last_ok) == _period(now):
        return None
    first = session.execute(select(func.min(Sweep.started_at))
                            .where(Sweep.outcome == "ok", Sweep.started_at >= _period(last_ok))).scalar_one()
    return (first or last_ok) - OVERLAP


def stamp(moment: dt.datetime) -> str:
    """A ConnectWise condition datetime: ``[2025-06-30T09:00:00Z]``, floored to the second (UTC)."""
    return moment.astimezone(dt.UTC).strftime("[%Y-%m-%dT%H:%M:%SZ]")


def fetch_changed(client: Client, base: Baseline, stored: StoredLoader) -> Changed:
    """The touched invoices that are open, read afresh, and every invoice the sweep now speaks for. Raises as
    ``fetch_open_invoices`` does (``ConnectWiseError``, ``InvalidRecord``)."""
    since = f"lastUpdated > {stamp(base.since)}"
    polls: list[Callable[[], Any]] = [
        lambda: client.get_all("finance/invoices", conditions=since, order_by="id", cache=False)]
    for path in LINE_FIELDS:
        if path == "expense/entries":
            if base.expenses_since is None:
                continue
            polls.append(_lister(client, path, f"lastUpdated > {stamp(base.expenses_since)} and invoice/id != null"))
        else:
            polls.append(_lister(client, path, f"{since} and invoice/id != null"))
    invoice_rows, *line_rows = client.parallel(polls)
    rows = by_id(invoice_rows)
    on_lines = {iid for records in line_rows for iid in _invoice_ids(records)} & base.known
    missing = sorted((on_lines | base.retry) - set(rows))
    if missing:
        conditions = id_conditions("id", missing, request_room(client, "finance/invoices", None, "id"))
        for got in client.parallel([partial(client.get_all, "finance/invoices", conditions=c, order_by="id",
                                            cache=False) for c in conditions]):
            rows.update(by_id(got))
    open_ids = base.open_status_ids
    if any(_status_id(row) not in open_ids for row in rows.values()):
        open_ids = frozenset(open_status_ids(client))
    changed = Changed(touched=(set(rows) & base.known) | set(missing))
    current = {iid: row for iid, row in rows.items() if _status_id(row) in open_ids}
    changed.touched |= set(current)
    changed.fetched = read_invoices(client, current, Reuse(stored, names=tuple(REFERENCES), history=True))
    return changed


def history_for_write(keyring: Keyring, fetched: OpenInvoices, existing: Mapping[int, Snapshot],
                      scope: set[int] | None) -> tuple[History, list[InvoicePayloads]]:
    """The history the rules read in a write, and the stored payloads of the open invoices a scoped write leaves
    alone (to be checked again where what the history tells them moved).

    The history is over every invoice still open after the write: the fresh payloads, the stored ones of the
    invoices that failed to read (they keep their snapshot) and, for a scoped write, of those outside the scope."""
    if scope is not None and not fetched.payloads and not scope & set(existing):
        return History(), []  # nothing read and nothing left: every stored digest still holds
    fresh = {p.invoice_id for p in fetched.payloads}
    failed = {f.invoice_id for f in fetched.failures}
    kept: list[InvoicePayloads] = []
    others: list[InvoicePayloads] = []
    for iid, snap in sorted(existing.items()):
        outside = scope is not None and iid not in scope
        if iid in fresh or not (outside or iid in failed):
            continue
        try:
            payloads = payloads_of(keyring, snap)
        except (DecryptionError, ValueError):  # unreadable stored data only costs its part of the history
            continue
        kept.append(payloads)
        if outside and iid not in failed:
            others.append(payloads)
    return build_history(payloads=[*fetched.payloads, *kept]), others


def _lister(client: Client, path: str, conditions: str) -> Callable[[], list[dict]]:
    return lambda: client.get_all(path, conditions=conditions, fields=("id", "invoice/id"), cache=False)


def _invoice_ids(records: Any) -> set[int]:
    ids: set[int] = set()
    for record in records or ():
        invoice = record.get("invoice") if isinstance(record, dict) else None
        invoice_id = invoice.get("id") if isinstance(invoice, dict) else None
        if isinstance(invoice_id, int) and not isinstance(invoice_id, bool):
            ids.add(invoice_id)
    return ids


def _status_id(row: Mapping[str, Any]) -> int | None:
    status = row.get("status")
    status_id = status.get("id") if isinstance(status, dict) else None
    return status_id if isinstance(status_id, int) and not isinstance(status_id, bool) else None


def stored_loader(services: Services, tenant_id: str) -> StoredLoader:
    """Reads the stored payloads of some invoices (decrypted) in a short transaction of its own."""

    def load(invoice_ids: Iterable[int]) -> dict[int, InvoicePayloads]:
        ids = sorted(set(invoice_ids))
        if not ids:
            return {}
        with tenant_session(tenant_id, services.session_factory) as session:
            rows = session.execute(select(Snapshot).where(Snapshot.invoice_id.in_(ids))).scalars().all()
            return {s.invoice_id: payloads_of(services.keyring, s) for s in rows}

    return load
