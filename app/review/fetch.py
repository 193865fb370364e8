"""Every open invoice of a tenant, read from ConnectWise in a few batched requests, as ``InvoicePayloads``.

"Open" is one rule (``is_open``): the invoice's billing status has neither ``closedFlag`` nor ``sentFlag``.
The round: the billing statuses, the open invoices' headers (one list), then in one parallel round their line
items, the reference records the headers name, and the agreement history. The payloads built are the ones
``app.invoices.service.fetch_payloads`` reads one invoice at a time (so the document and the rules see the same
values either way), plus, on an agreement invoice, the invoice before it on its agreement
(``rules.history.AGREEMENT_INVOICES``), which the "agreement invoice amount changed" check reads.

Where the requests go (1,000 open invoices; API-NOTES §4, §5), and why:

- Lines and batched references are asked for by id sets written as ranges with their small gaps excluded
  (``app.review.conditions``): one condition covers hundreds of clustered invoices where an ``in (...)`` list of
  200 ids already fills a URL. Pages are 1,000 records, so a collection costs about one request per 1,000 lines.
  Where the open invoices are interleaved with many closed ones, the exact set takes several conditions; a sparse
  collection (products, expenses) is then cheaper as plain ranges over the gaps, the lines of the closed invoices
  in them read and dropped here (bounded: at most as many extra invoices as asked for, and only when that saves
  requests for the lines an invoice is expected to have, ``LINES_PER_INVOICE``). References are always exact.
- The agreement history is one ``finance/invoices`` list: the agreement invoices of the agreements the open
  ones name, a few fields, back to ``LOOKBACK`` before the oldest open one (an annual agreement's previous invoice
  is a year back). An open invoice more than ``MAX_SPAN`` older than the newest finds no previous one (partial).
- Agreement additions and payments are served only under their parent (one request per agreement, per invoice)
  and are most of what is left (65 requests on the simulator's 1,003 open invoices, against 17 for everything
  else). Neither changes what a rule finds, only the document. So they are carried from the invoice's stored
  snapshot while it names the same parent: payments while the header's paid amounts (payments, credits, balance)
  are unchanged (else read again now); additions while it names the same agreement, or from another snapshot on
  that agreement, each agreement's re-read once every ``ADDITIONS_REFRESH_DAYS`` days by a full sweep (the day is
  picked by its id, so the re-reads spread over the week). Those no snapshot holds yet (a tenant's first sweep, an
  invoice new to review) are left out of the payloads (``OpenInvoices.deferred``; the document shows ConnectWise's
  agreement amount and credit figures as single lines meanwhile) and read by ``app.review.details``, a job of
  their own within the background share of the request ceiling, as routing is: the sweep's flags do not wait.
  An incremental sweep and a rescan read them at once for the invoices they touch.

Every read bypasses the response cache: a sweep must see what changed a moment ago.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from app.connectwise import errors as cw_errors
from app.connectwise.client import PAGE_SIZE, Client
from app.connectwise.records import BILLING_STATUS_FIELDS, BillingStatusRecord, InvoiceHeader
from app.invoices.errors import InvalidInvoiceData
from app.invoices.payloads import parse_header
from app.invoices.service import LINE_FIELDS, REFERENCES, InvoicePayloads, reference_ids, references_of
from app.review.conditions import covering_conditions, id_conditions, room
from app.review.rules.history import AGREEMENT_INVOICES, History, agreement_invoice

PAID = ("payments", "credits", "balance")  # header amounts that move when a payment or credit is applied
PER_PARENT = ("additions", "payments")  # references ConnectWise serves only under their parent record
ADDITIONS_REFRESH_DAYS = 7
LOOKBACK = dt.timedelta(days=400)
MAX_SPAN = dt.timedelta(days=800)
AGREEMENT_FIELDS = ("id", "invoiceNumber", "type", "date", "total", "agreement/id")
# What an invoice is expected to carry, to weigh a few lines too many against a request more; a wrong guess costs
# a request or two, never a line.
LINES_PER_INVOICE = {"procurement/products": 1.0, "time/entries": 4.0, "expense/entries": 0.3}
StoredLoader = Callable[[Iterable[int]], Mapping[int, InvoicePayloads]]


@dataclass(frozen=True)
class Failure:
    """An invoice that could not be read; ``reason`` names the record and field, never a value."""

    invoice_id: int
    invoice_number: str
    reason: str


@dataclass
class OpenInvoices:
    payloads: list[InvoicePayloads] = field(default_factory=list)
    headers: dict[int, InvoiceHeader] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    deferred: dict[int, tuple[str, ...]] = field(default_factory=dict)  # per-parent references left to the job
    held: list[int] = field(default_factory=list)  # open, but beyond the plan's review limit: not read


@dataclass(frozen=True)
class Reuse:
    """What may be carried from the stored snapshots: which references (all of them, for an incremental read that
    does not poll them; the per-parent ones, for a full read), and the day that picks additions to re-read."""

    stored: StoredLoader
    names: tuple[str, ...] = PER_PARENT
    today: dt.date | None = None  # None: no additions are due (an incremental read or a rescan)
    history: bool = False  # carry the stored agreement history while the invoice's agreement and date are the same
    defer: bool = False  # leave the per-parent references no snapshot holds yet to ``app.review.details``


def is_open(status: BillingStatusRecord) -> bool:
    """The one definition of an open invoice's status: neither closed nor sent."""
    return not status.closed and not status.sent


def open_status_ids(client: Client) -> list[int]:
    """The ids of the billing statuses an open invoice may have. Raises InvalidRecord on an unreadable status."""
    raw = client.get_all("finance/billingStatuses", fields=BILLING_STATUS_FIELDS, cache=False)
    return sorted(s.id for s in (BillingStatusRecord.parse(r) for r in raw) if is_open(s))


def fetch_open_invoices(client: Client, stored: StoredLoader | None = None,
                        today: dt.date | None = None, limit: int | None = None) -> OpenInvoices:
    """Payloads of every open invoice; agreement additions and payments carried from ``stored`` where they may be,
    and left out (``deferred``) where no snapshot holds them yet. An invoice whose header does not read is a
    ``Failure``; a ConnectWise failure or an unreadable status raises (``ConnectWiseError``, ``InvalidRecord``).

    ``limit`` (the plan's review limit): only the most recent that many are read; the rest are listed ``held``."""
    status_ids = open_status_ids(client)
    if not status_ids:
        return OpenInvoices()
    space = request_room(client, "finance/invoices", None, "id")
    rows = _header_rows(client, id_conditions("status/id", status_ids, space))
    held: list[int] = []
    if limit is not None and len(rows) > limit:
        ranked = most_recent_first(rows)
        held = sorted(ranked[limit:])
        rows = {iid: rows[iid] for iid in ranked[:limit]}
    reuse = Reuse(stored, today=today or dt.date.today(), defer=True) if stored is not None else None
    found = read_invoices(client, rows, reuse)
    found.held = held
    return found


def most_recent_first(rows: Mapping[int, dict]) -> list[int]:
    """Invoice ids by invoice date, newest first, then id; a header whose date does not read ranks last (it is
    the oldest we can say anything about)."""
    def key(iid: int) -> tuple[dt.date, int]:
        try:
            date = parse_header(rows[iid]).date
        except InvalidInvoiceData:
            date = None
        return (date or dt.date.min, iid)

    return sorted(rows, key=key, reverse=True)


def fetch_invoices(client: Client, invoice_ids: Sequence[int], stored: StoredLoader | None = None) -> OpenInvoices:
    """Payloads of those of ``invoice_ids`` that are open now (the others are simply absent): a rescan's read.
    References and the agreement history are carried from ``stored`` while the header names the same ones."""
    status_ids = open_status_ids(client)
    ids = sorted({int(i) for i in invoice_ids})
    if not status_ids or not ids:
        return OpenInvoices()
    statuses = f" and status/id in ({','.join(str(i) for i in status_ids)})"
    conditions = id_conditions("id", ids, request_room(client, "finance/invoices", None, "id", statuses))
    rows = _header_rows(client, [c + statuses for c in conditions])
    reuse = Reuse(stored, names=tuple(REFERENCES), history=True) if stored is not None else None
    return read_invoices(client, rows, reuse)


def parse_headers(rows: Mapping[int, dict], found: OpenInvoices) -> dict[int, dict]:
    """Parse each invoice header into ``found``; one that cannot be read is recorded as failed, the rest go on.

    Returns the raw rows of the headers that parsed, by invoice id."""
    raw_headers: dict[int, dict] = {}
    for invoice_id, row in sorted(rows.items()):
        try:
            found.headers[invoice_id] = parse_header(row)
        except InvalidInvoiceData as exc:
            number = row.get("invoiceNumber")
            found.failures.append(Failure(invoice_id, number if isinstance(number, str) else "", str(exc)))
            continue
        raw_headers[invoice_id] = row
    return raw_headers


def by_id(rows: Any) -> dict[int, dict]:
    """Invoice list rows by id; raises MalformedResponse for a row without an id."""
    out: dict[int, dict] = {}
    for row in rows or ():
        invoice_id = row.get("id") if isinstance(row, dict) else None
        if isinstance(invoice_id, bool) or not isinstance(invoice_id, int):
            raise cw_errors.MalformedResponse("ConnectWise listed an invoice without an id")
        out[invoice_id] = row
    return out


def _header_rows(client: Client, conditions: list[str]) -> dict[int, dict]:
    calls = [partial(client.get_all, "finance/invoices", conditions=c, order_by="id", cache=False) for c in conditions]
    rows: dict[int, dict] = {}
    for got in client.parallel(calls):
        rows.update(by_id(got))
    return rows


def read_invoices(client: Client, rows: Mapping[int, dict], reuse: Reuse | None) -> OpenInvoices:
    """The payloads of these invoice header rows: lines, references and agreement history in one parallel round,
    carrying from the stored snapshots what ``reuse`` allows."""
    found = OpenInvoices()
    raw_headers = parse_headers(rows, found)
    if not raw_headers:
        return found
    refs = {iid: reference_ids(found.headers[iid]) for iid in raw_headers}
    agreements = {iid: (h.agreement_id, h.date) for iid, h in found.headers.items()
                  if iid in raw_headers and h.type == "Agreement" and h.agreement_id is not None and h.date}
    kept: dict[int, dict[str, Any]] = {iid: {} for iid in raw_headers}
    if reuse is not None:
        wanted = {iid for iid, named in refs.items() if set(named) & set(reuse.names)}
        wanted |= set(agreements) if reuse.history else set()
        old = reuse.stored(sorted(wanted)) if wanted else {}
        for iid in wanted:
            kept[iid] = _carried(old.get(iid), refs[iid], raw_headers[iid], reuse, agreements.get(iid))
        if reuse.defer:
            found.deferred = _defer(refs, kept, old, reuse)
    read = {iid: {n: r for n, r in refs[iid].items() if n not in kept[iid] and n not in found.deferred.get(iid, ())}
            for iid in raw_headers}
    history_for = {iid: a for iid, a in agreements.items() if AGREEMENT_INVOICES not in kept[iid]}
    lines, records, previous = _read_round(client, list(raw_headers), read, history_for)
    for iid, raw in raw_headers.items():
        collections: dict[str, Any] = {path: lines[path].get(iid, []) for path in LINE_FIELDS}
        for name, ref in refs[iid].items():
            if name not in found.deferred.get(iid, ()):
                collections[name] = kept[iid][name] if name in kept[iid] else records[name].get(ref)
        if iid in agreements:
            collections[AGREEMENT_INVOICES] = kept[iid].get(AGREEMENT_INVOICES, previous.get(iid))
        found.payloads.append(InvoicePayloads(iid, raw, collections))
    return found


def _carried(old: InvoicePayloads | None, named: Mapping[str, int], header: Mapping[str, Any], reuse: Reuse,
             agreement: tuple[int, dt.date] | None) -> dict[str, Any]:
    """The collections that may be taken from the stored payloads ``old`` instead of being read again."""
    if old is None:
        return {}
    try:
        old_refs = references_of(old)
    except InvalidInvoiceData:
        return {}
    old_header, old_collections = old.header_json(), old.collections_json()
    paid_same = all(old_header.get(k) == header.get(k) for k in PAID)
    keep: dict[str, Any] = {}
    for name, ref in named.items():
        if name not in reuse.names or old_refs.get(name) != ref or name not in old_collections:
            continue
        if name == "payments" and not paid_same:
            continue
        if name == "additions" and reuse.today is not None and _additions_due(ref, reuse.today):
            continue
        keep[name] = old_collections[name]
    if reuse.history and agreement is not None and AGREEMENT_INVOICES in old_collections:
        before = old_header.get("agreement") if isinstance(old_header.get("agreement"), dict) else {}
        if before.get("id") == agreement[0] and old_header.get("date") == header.get("date"):
            keep[AGREEMENT_INVOICES] = old_collections[AGREEMENT_INVOICES]
    return keep


def _defer(refs: Mapping[int, Mapping[str, int]], kept: dict[int, dict[str, Any]],
           old: Mapping[int, InvoicePayloads], reuse: Reuse) -> dict[int, tuple[str, ...]]:
    """Per-parent references no snapshot holds yet, by invoice, left to ``app.review.details``; an agreement's
    additions another snapshot holds are taken from it instead (into ``kept``)."""
    siblings: dict[int, Any] = {}
    for payloads in old.values():
        additions = payloads.collections.get("additions")
        agreement = payloads.header.get("agreement")
        if additions is not None and isinstance(agreement, Mapping) and isinstance(agreement.get("id"), int):
            siblings.setdefault(agreement["id"], payloads.collections_json()["additions"])
    deferred: dict[int, tuple[str, ...]] = {}
    for iid, named in refs.items():
        stored = old.get(iid)
        left = []
        for name in PER_PARENT:
            if name not in named or name in kept[iid] or (stored is not None and name in stored.collections):
                continue  # carried, or held but moved (read again now)
            due = name == "additions" and reuse.today is not None and _additions_due(named[name], reuse.today)
            if name == "additions" and named[name] in siblings and not due:
                kept[iid][name] = siblings[named[name]]
            else:
                left.append(name)
        if left:
            deferred[iid] = tuple(left)
    return deferred


def _additions_due(agreement_id: int, today: dt.date) -> bool:
    return agreement_id % ADDITIONS_REFRESH_DAYS == today.toordinal() % ADDITIONS_REFRESH_DAYS


def request_room(client: Client, path: str, fields: Sequence[str] | None, order_by: str | None = None,
                 extra: str = "") -> int:
    """What ``id_conditions`` may use in a ``get_all`` of ``path`` (the same parameters it sends)."""
    params: dict[str, str | int] = {"pageSize": PAGE_SIZE, "page": 1}
    if fields:
        params["fields"] = ",".join(fields)
    if order_by:
        params["orderBy"] = order_by
    return room(client.api_base, path, params, extra)


def _read_round(client: Client, invoice_ids: list[int], refs: Mapping[int, Mapping[str, int]],
                agreements: Mapping[int, tuple[int, dt.date]],
                ) -> tuple[dict[str, dict[int, list]], dict[str, dict[int, Any]], dict[int, list[dict] | None]]:
    """Lines by collection and invoice id; reference records by name and id (None: missing or forbidden); the
    invoice before each of ``agreements`` on its agreement (a list of none or one row; None: forbidden)."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for named in refs.values():
        for name, ref in named.items():
            wanted[name].add(ref)
    calls: list[Callable[[], Any]] = []
    sinks: list[Callable[[Any], None]] = []
    lines: dict[str, dict[int, list]] = {path: defaultdict(list) for path in LINE_FIELDS}
    records: dict[str, dict[int, Any]] = {name: {} for name in REFERENCES}
    history_rows: list[Any] = []

    def add(call: Callable[[], Any], sink: Callable[[Any], None]) -> None:
        calls.append(call)
        sinks.append(sink)

    asked = set(invoice_ids)
    for path, line_fields in LINE_FIELDS.items():
        space = request_room(client, path, line_fields)
        for condition in covering_conditions("invoice/id", invoice_ids, space, LINES_PER_INVOICE.get(path, 1.0)):
            add(_lister(client, path, condition, line_fields), partial(_group_lines, lines[path], asked))
    for name, ids in wanted.items():
        many, template, fields = REFERENCES[name]
        if many:  # served only under its parent record (an agreement, an invoice): one list per parent
            for ref in sorted(ids):
                add(per_parent_call(client, name, ref), partial(records[name].__setitem__, ref))
        else:
            collection = template.removesuffix("/{}")
            for condition in id_conditions("id", ids, request_room(client, collection, fields)):
                add(_tolerant(_lister(client, collection, condition, fields)), partial(_by_id, records[name]))
    forbidden = False
    if agreements:
        def keep_rows(got: list[dict] | None) -> None:
            nonlocal forbidden
            forbidden = forbidden or got is None
            history_rows.extend(got or ())

        for condition in _agreement_conditions(client, agreements):
            add(_tolerant(_lister(client, "finance/invoices", condition, AGREEMENT_FIELDS, "id")), keep_rows)
    for sink, got in zip(sinks, client.parallel(calls), strict=True):
        sink(got)
    previous = _previous(history_rows, agreements, forbidden) if agreements else {}
    return lines, records, previous


def _agreement_conditions(client: Client, agreements: Mapping[int, tuple[int, dt.date]]) -> list[str]:
    """``finance/invoices`` conditions for the agreement invoices of these agreements, back far enough."""
    days = [day for _agreement, day in agreements.values()]
    since = max(min(days) - LOOKBACK, max(days) - MAX_SPAN)
    extra = f'type = "Agreement" and date >= [{since.isoformat()}T00:00:00Z] and '
    ids = {agreement for agreement, _day in agreements.values()}
    space = request_room(client, "finance/invoices", AGREEMENT_FIELDS, "id", extra)
    return [extra + condition for condition in id_conditions("agreement/id", ids, space)]


def _previous(rows: list[Any], agreements: Mapping[int, tuple[int, dt.date]],
              forbidden: bool) -> dict[int, list[dict] | None]:
    """For each agreement invoice, the row of the invoice just before it on its agreement (a list of none or one;
    None when ConnectWise would not list them)."""
    if forbidden:
        return dict.fromkeys(agreements)
    parsed: dict[int, dict[int, Any]] = defaultdict(dict)
    raw: dict[int, dict] = {}
    for row in rows:
        found = agreement_invoice(row)
        if found is not None:
            parsed[found[0]][found[1].invoice_id] = found[1]
            raw[found[1].invoice_id] = row
    history = History(agreement_invoices={a: tuple(invoices.values()) for a, invoices in parsed.items()})
    out: dict[int, list[dict] | None] = {}
    for iid, (agreement_id, day) in agreements.items():
        before = history.previous_on_agreement(agreement_id, iid, day)
        out[iid] = [raw[before.invoice_id]] if before is not None else []
    return out


def per_parent_call(client: Client, name: str, ref: int) -> Callable[[], Any]:
    """The read of one per-parent reference (``PER_PARENT``): its records, or None when missing or forbidden."""
    _many, template, fields = REFERENCES[name]
    return _tolerant(_lister(client, template.format(ref), None, fields))


def _lister(client: Client, path: str, conditions: str | None, fields: Any,
            order_by: str | None = None) -> Callable[[], list[dict]]:
    return lambda: client.get_all(path, conditions=conditions, fields=fields, order_by=order_by, cache=False)


def _tolerant(call: Callable[[], Any]) -> Callable[[], Any]:
    """As reconstruction treats optional context: a missing or forbidden reference is None, not a failure."""

    def run() -> Any:
        try:
            return call()
        except (cw_errors.NotFound, cw_errors.PermissionMissing):
            return None

    return run


def _group_lines(into: dict[int, list], asked: set[int], records: list[dict]) -> None:
    for record in records:
        invoice = record.get("invoice") if isinstance(record, dict) else None
        invoice_id = invoice.get("id") if isinstance(invoice, dict) else None
        if isinstance(invoice_id, int) and not isinstance(invoice_id, bool) and invoice_id in asked:
            into[invoice_id].append(record)


def _by_id(into: dict[int, Any], records: list[dict] | None) -> None:
    for record in records or ():
        record_id = record.get("id") if isinstance(record, dict) else None
        if isinstance(record_id, int) and not isinstance(record_id, bool):
            into[record_id] = record
