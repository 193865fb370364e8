"""The incremental sweep's reading: only the invoices ConnectWise changed since the last successful sweep.

Four polls in one parallel round ask for what changed (``lastUpdated`` after the last successful sweep's start, less
``OVERLAP`` for clock skew): invoices, and the product, time and expense lines that sit on an invoice. The invoices
they touch are read again (headers by ``id in (...)``, their lines by ``invoice/id in (...)``); the reference
records a touched invoice names (company, billing setup, tax code, ...) are reused from its stored snapshot when it
still names the same ones, as those records are not polled (the nightly full sweep refreshes them). Payments are
read again whenever the invoice's paid amounts moved. Touched invoices that are no longer open, or gone, are what the
sweep drops. Billing statuses are read only when a changed invoice carries a status no snapshot has: every status a
snapshot holds was open when it was taken.

``baseline`` says when a sweep must be full instead: no successful sweep or snapshot yet, or no full sweep for a day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.connectwise import errors as cw_errors
from app.connectwise.client import IN_CHUNK, Client
from app.connectwise.lines import in_condition
from app.invoices.errors import InvalidInvoiceData
from app.invoices.service import LINE_FIELDS, InvoicePayloads, reference_ids, references_of
from app.review.fetch import OpenInvoices, _read_round, open_status_ids, parse_headers
from app.review.models import Snapshot, Sweep
from app.review.snapshots import payloads_of
from app.services import Services
from app.tenancy import tenant_session

OVERLAP = dt.timedelta(minutes=2)
FULL_EVERY = dt.timedelta(hours=24)
_PAID = ("payments", "credits", "balance")  # header amounts that move when a payment or credit is applied
StoredLoader = Callable[[Iterable[int]], Mapping[int, InvoicePayloads]]


@dataclass(frozen=True)
class Baseline:
    """Where an incremental sweep starts: read from the database before ConnectWise is asked."""

    since: dt.datetime
    open_status_ids: frozenset[int]
    known: frozenset[int]  # invoices with a snapshot
    retry: frozenset[int]  # invoices the last successful sweep could not read


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
                    frozenset(i for i, _ in rows), frozenset(retry))


def stamp(moment: dt.datetime) -> str:
    """A ConnectWise condition datetime: ``[2025-06-30T09:00:00Z]``, floored to the second (UTC)."""
    return moment.astimezone(dt.UTC).strftime("[%Y-%m-%dT%H:%M:%SZ]")


def fetch_changed(client: Client, base: Baseline, stored: StoredLoader) -> Changed:
    """The touched invoices that are open, read afresh, and every invoice the sweep now speaks for. Raises as
    ``fetch_open_invoices`` does (``ConnectWiseError``, ``InvalidRecord``)."""
    since = f"lastUpdated > {stamp(base.since)}"
    polls: list[Callable[[], Any]] = [
        lambda: client.get_all("finance/invoices", conditions=since, order_by="id", cache=False)]
    polls += [_lister(client, path, f"{since} and invoice/id != null", ("id", "invoice/id")) for path in LINE_FIELDS]
    invoice_rows, *line_rows = client.parallel(polls)
    rows = _by_id(invoice_rows)
    on_lines = {iid for records in line_rows for iid in _invoice_ids(records)} & base.known
    missing = sorted((on_lines | base.retry) - set(rows))
    for chunk in (missing[i:i + IN_CHUNK] for i in range(0, len(missing), IN_CHUNK)):
        rows.update(_by_id(client.get_all("finance/invoices", conditions=in_condition("id", chunk), order_by="id",
                                          cache=False)))
    open_ids = base.open_status_ids
    if any(_status_id(row) not in open_ids for row in rows.values()):
        open_ids = frozenset(open_status_ids(client))
    changed = Changed(touched=(set(rows) & base.known) | set(missing))
    current = {iid: row for iid, row in rows.items() if _status_id(row) in open_ids}
    changed.touched |= set(current)
    _read_touched(client, current, stored(sorted(set(current) & base.known)), changed.fetched)
    return changed


def _read_touched(client: Client, rows: Mapping[int, dict], stored: Mapping[int, InvoicePayloads],
                  found: OpenInvoices) -> None:
    """Payloads of the touched open invoices: lines read again, references reused from the snapshot when the same."""
    raw_headers = parse_headers(rows, found)
    refs = {iid: reference_ids(h) for iid, h in found.headers.items()}
    reused: dict[int, dict[str, Any]] = {}
    wanted: dict[int, dict[str, int]] = {}
    for iid, named in refs.items():
        reused[iid], wanted[iid] = _reusable(stored.get(iid), named, raw_headers[iid])
    if not raw_headers:
        return
    lines, records = _read_round(client, list(raw_headers), wanted)
    for iid, raw in raw_headers.items():
        collections: dict[str, Any] = {path: lines[path].get(iid, []) for path in LINE_FIELDS}
        for name, ref in refs[iid].items():
            collections[name] = reused[iid][name] if name in reused[iid] else records[name].get(ref)
        found.payloads.append(InvoicePayloads(iid, raw, collections))


def _reusable(old: InvoicePayloads | None, named: Mapping[str, int], header: Mapping[str, Any],
              ) -> tuple[dict[str, Any], dict[str, int]]:
    """(references kept from the stored payloads, references to read again)."""
    if old is None:
        return {}, dict(named)
    try:
        old_refs = references_of(old)
    except InvalidInvoiceData:
        return {}, dict(named)
    old_header, old_collections = old.header_json(), old.collections_json()
    paid_same = all(old_header.get(k) == header.get(k) for k in _PAID)
    keep: dict[str, Any] = {}
    read: dict[str, int] = {}
    for name, ref in named.items():
        if old_refs.get(name) == ref and name in old_collections and (name != "payments" or paid_same):
            keep[name] = old_collections[name]
        else:
            read[name] = ref
    return keep, read


def _lister(client: Client, path: str, conditions: str, fields: tuple[str, ...]) -> Callable[[], list[dict]]:
    return lambda: client.get_all(path, conditions=conditions, fields=fields, cache=False)


def _by_id(rows: Any) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for row in rows or ():
        invoice_id = row.get("id") if isinstance(row, dict) else None
        if isinstance(invoice_id, bool) or not isinstance(invoice_id, int):
            raise cw_errors.MalformedResponse("ConnectWise listed an invoice without an id")
        out[invoice_id] = row
    return out


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
