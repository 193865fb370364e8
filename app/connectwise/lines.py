"""Line items of many invoices at once: three collections, ``invoice/id in (...)`` chunks, in parallel."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from app.connectwise.client import IN_CHUNK, Client
from app.connectwise.payloads import EXPENSE_FIELDS, PRODUCT_FIELDS, TIME_FIELDS, Line

COLLECTIONS = (
    ("procurement/products", PRODUCT_FIELDS, Line.product),
    ("time/entries", TIME_FIELDS, Line.time),
    ("expense/entries", EXPENSE_FIELDS, Line.expense),
)


def lines_for_invoices(client: Client, invoice_ids: Iterable[int]) -> dict[int, list[Line]]:
    """Every product, time and expense line of ``invoice_ids``, grouped by invoice.

    One flat list of (collection, chunk of ids) calls, run with the client's bounded concurrency.
    """
    ids = sorted({int(i) for i in invoice_ids})
    grouped: dict[int, list[Line]] = {i: [] for i in ids}
    if not ids:
        return grouped
    chunks = [ids[i:i + IN_CHUNK] for i in range(0, len(ids), IN_CHUNK)]
    work = [(path, fields, parse, chunk) for path, fields, parse in COLLECTIONS for chunk in chunks]
    calls = [lambda p=path, f=fields, c=chunk: client.get_all(p, conditions=_in("invoice/id", c), fields=f)
             for path, fields, _parse, chunk in work]
    for (_path, _fields, parse, _chunk), records in zip(work, client.parallel(calls), strict=True):
        for record in records:
            line = parse(record)
            if line.invoice_id in grouped:
                grouped[line.invoice_id].append(line)
    return grouped


def invoice_line_calls(client: Client, invoice_id: int, fields: Mapping[str, Sequence[str]] | None = None,
                       ) -> dict[str, Callable[[], list[dict]]]:
    """One call per line collection of one invoice, returning raw records, for the caller's own parallel round.

    ``fields`` maps a collection path to its projection (default: the reduced ones above).
    """
    chosen = fields or {}
    return {path: (lambda p=path, f=chosen.get(path, default): client.get_all(
                p, conditions=f"invoice/id={int(invoice_id)}", fields=f))
            for path, default, _parse in COLLECTIONS}


def _in(field: str, ids: list[int]) -> str:
    return f"{field} in ({','.join(str(int(i)) for i in ids)})"


def lines_naively(client: Client, invoice_ids: Iterable[int]) -> dict[int, list[Line]]:
    """The way we don't do it (for the benchmark): one request per invoice per collection."""
    grouped: dict[int, list[Line]] = defaultdict(list)
    for invoice_id in invoice_ids:
        for path, fields, parse in COLLECTIONS:
            for record in client.get_all(path, conditions=f"invoice/id={int(invoice_id)}", fields=fields):
                grouped[invoice_id].append(parse(record))
    return grouped
