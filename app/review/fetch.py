"""Every open invoice of a tenant, read from ConnectWise in a few batched requests, as ``InvoicePayloads``.

"Open" is one rule (``is_open``): the invoice's billing status has neither ``closedFlag`` nor ``sentFlag``.
The round: the billing statuses, the open invoices' headers (one list), then in one parallel round their line
items (``invoice/id in (...)`` chunks per collection) and the reference records the headers name (``id in
(...)`` chunks per kind; agreement additions per agreement and payments per invoice, which ConnectWise only
serves under their parent). The payloads built are the ones ``app.invoices.service.fetch_payloads`` reads one
invoice at a time, so the document and the rules see the same values either way.

Every read bypasses the response cache: a sweep must see what changed a moment ago.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from app.connectwise import errors as cw_errors
from app.connectwise.client import IN_CHUNK, Client
from app.connectwise.lines import in_condition
from app.connectwise.records import BILLING_STATUS_FIELDS, BillingStatusRecord, InvoiceHeader
from app.invoices.errors import InvalidInvoiceData
from app.invoices.payloads import parse_header
from app.invoices.service import LINE_FIELDS, REFERENCES, InvoicePayloads, reference_ids


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


def is_open(status: BillingStatusRecord) -> bool:
    """The one definition of an open invoice's status: neither closed nor sent."""
    return not status.closed and not status.sent


def open_status_ids(client: Client) -> list[int]:
    """The ids of the billing statuses an open invoice may have. Raises InvalidRecord on an unreadable status."""
    raw = client.get_all("finance/billingStatuses", fields=BILLING_STATUS_FIELDS, cache=False)
    return sorted(s.id for s in (BillingStatusRecord.parse(r) for r in raw) if is_open(s))


def fetch_open_invoices(client: Client) -> OpenInvoices:
    """Payloads of every open invoice. An invoice whose header does not read is a ``Failure``; a ConnectWise
    failure or an unreadable status raises (``ConnectWiseError``, ``InvalidRecord``)."""
    status_ids = open_status_ids(client)
    if not status_ids:
        return OpenInvoices()
    return _fetch(client, in_condition("status/id", status_ids))


def fetch_invoices(client: Client, invoice_ids: Sequence[int]) -> OpenInvoices:
    """Payloads of those of ``invoice_ids`` that are open now (the others are simply absent): a rescan's read."""
    status_ids = open_status_ids(client)
    ids = sorted({int(i) for i in invoice_ids})[:IN_CHUNK]
    if not status_ids or not ids:
        return OpenInvoices()
    return _fetch(client, f"{in_condition('id', ids)} and {in_condition('status/id', status_ids)}")


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


def _fetch(client: Client, conditions: str) -> OpenInvoices:
    """The headers matching ``conditions``, then their lines and references in one parallel round."""
    found = OpenInvoices()
    rows = client.get_all("finance/invoices", conditions=conditions, order_by="id", cache=False)
    by_id: dict[int, dict] = {}
    for row in rows:
        invoice_id = row.get("id") if isinstance(row, dict) else None
        if isinstance(invoice_id, bool) or not isinstance(invoice_id, int):
            raise cw_errors.MalformedResponse("ConnectWise listed an invoice without an id")
        by_id[invoice_id] = row
    raw_headers = parse_headers(by_id, found)
    refs = {iid: reference_ids(h) for iid, h in found.headers.items()}
    lines, records = _read_round(client, list(raw_headers), refs)
    for iid, raw in raw_headers.items():
        collections: dict[str, Any] = {path: lines[path].get(iid, []) for path in LINE_FIELDS}
        for name, ref in refs[iid].items():
            collections[name] = records[name].get(ref)
        found.payloads.append(InvoicePayloads(iid, raw, collections))
    return found


def _read_round(client: Client, invoice_ids: list[int], refs: Mapping[int, Mapping[str, int]],
                ) -> tuple[dict[str, dict[int, list]], dict[str, dict[int, Any]]]:
    """Lines by collection and invoice id; reference records by name and id (None: missing or forbidden)."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for named in refs.values():
        for name, ref in named.items():
            wanted[name].add(ref)
    calls: list[Callable[[], Any]] = []
    sinks: list[Callable[[Any], None]] = []
    lines: dict[str, dict[int, list]] = {path: defaultdict(list) for path in LINE_FIELDS}
    records: dict[str, dict[int, Any]] = {name: {} for name in REFERENCES}

    def add(call: Callable[[], Any], sink: Callable[[Any], None]) -> None:
        calls.append(call)
        sinks.append(sink)

    for path, line_fields in LINE_FIELDS.items():
        for chunk in _chunks(invoice_ids):
            add(_lister(client, path, in_condition("invoice/id", chunk), line_fields),
                partial(_group_lines, lines[path]))
    for name, ids in wanted.items():
        many, template, fields = REFERENCES[name]
        if many:  # served only under its parent record (an agreement, an invoice): one list per parent
            for ref in sorted(ids):
                add(_tolerant(_lister(client, template.format(ref), None, fields)),
                    partial(records[name].__setitem__, ref))
        else:
            collection = template.removesuffix("/{}")
            for chunk in _chunks(ids):
                add(_tolerant(_lister(client, collection, in_condition("id", chunk), fields)),
                    partial(_by_id, records[name]))
    for sink, got in zip(sinks, client.parallel(calls), strict=True):
        sink(got)
    return lines, records


def _chunks(ids: Iterable[int]) -> list[list[int]]:
    ordered = sorted(ids)
    return [ordered[i:i + IN_CHUNK] for i in range(0, len(ordered), IN_CHUNK)]


def _lister(client: Client, path: str, conditions: str | None, fields: Any) -> Callable[[], list[dict]]:
    return lambda: client.get_all(path, conditions=conditions, fields=fields, cache=False)


def _tolerant(call: Callable[[], Any]) -> Callable[[], Any]:
    """As reconstruction treats optional context: a missing or forbidden reference is None, not a failure."""

    def run() -> Any:
        try:
            return call()
        except (cw_errors.NotFound, cw_errors.PermissionMissing):
            return None

    return run


def _group_lines(into: dict[int, list], records: list[dict]) -> None:
    for record in records:
        invoice = record.get("invoice") if isinstance(record, dict) else None
        invoice_id = invoice.get("id") if isinstance(invoice, dict) else None
        if isinstance(invoice_id, int) and not isinstance(invoice_id, bool):
            into[invoice_id].append(record)


def _by_id(into: dict[int, Any], records: list[dict] | None) -> None:
    for record in records or ():
        record_id = record.get("id") if isinstance(record, dict) else None
        if isinstance(record_id, int) and not isinstance(record_id, bool):
            into[record_id] = record
