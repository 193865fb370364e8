"""Line items of many invoices at once: three collections, ``invoice/id in (...)`` chunks, in parallel."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from app.connectwise.client import Client
from app.connectwise.payloads import EXPENSE_FIELDS, PRODUCT_FIELDS, TIME_FIELDS, Line

COLLECTIONS = (
    ("procurement/products", PRODUCT_FIELDS, Line.product),
    ("time/entries", TIME_FIELDS, Line.time),
    ("expense/entries", EXPENSE_FIELDS, Line.expense),
)


def lines_for_invoices(client: Client, invoice_ids: Iterable[int]) -> dict[int, list[Line]]:
    """Every product, time and expense line of ``invoice_ids``, grouped by invoice."""
    ids = sorted({int(i) for i in invoice_ids})
    grouped: dict[int, list[Line]] = {i: [] for i in ids}
    if not ids:
        return grouped
    calls = [lambda p=path, f=fields: client.get_many_by_ids(p, "invoice/id", ids, fields=f)
             for path, fields, _ in COLLECTIONS]
    for (_path, _fields, parse), records in zip(COLLECTIONS, client.parallel(calls), strict=True):
        for record in records:
            line = parse(record)
            if line.invoice_id in grouped:
                grouped[line.invoice_id].append(line)
    return grouped


def lines_naively(client: Client, invoice_ids: Iterable[int]) -> dict[int, list[Line]]:
    """The way we don't do it (for the benchmark): one request per invoice per collection."""
    grouped: dict[int, list[Line]] = defaultdict(list)
    for invoice_id in invoice_ids:
        for path, fields, parse in COLLECTIONS:
            for record in client.get_all(path, conditions=f"invoice/id={int(invoice_id)}", fields=fields):
                grouped[invoice_id].append(parse(record))
    return grouped
