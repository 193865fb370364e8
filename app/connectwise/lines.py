"""Line items of invoices: products, time and expense entries, asked for by invoice id.

``invoice_line_calls`` gives one invoice's three reads for the caller's own parallel round (reconstruction).
``lines_for_invoices`` reads the lines of many invoices at once (``invoice/id in (...)`` chunks, in parallel), as
a review sweep will; its records are read tolerantly, so one unreadable field marks its record (``degraded``)
instead of sinking the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from app.connectwise.client import IN_CHUNK, Client
from app.connectwise.records import (
    EXPENSE_FIELDS,
    PRODUCT_FIELDS,
    TIME_FIELDS,
    ExpenseRecord,
    ProductRecord,
    TimeRecord,
)

LineRecord = ProductRecord | TimeRecord | ExpenseRecord
COLLECTIONS: tuple[tuple[str, tuple[str, ...], Callable[..., Any]], ...] = (
    ("procurement/products", PRODUCT_FIELDS, ProductRecord.parse),
    ("time/entries", TIME_FIELDS, TimeRecord.parse),
    ("expense/entries", EXPENSE_FIELDS, ExpenseRecord.parse),
)


def lines_for_invoices(client: Client, invoice_ids: Iterable[int]) -> dict[int, list[LineRecord]]:
    """Every product, time and expense line of ``invoice_ids``, grouped by invoice.

    One flat list of (collection, chunk of ids) calls, run with the client's bounded concurrency. Raises
    ``InvalidRecord`` only for a line without a usable id.
    """
    ids = sorted({int(i) for i in invoice_ids})
    grouped: dict[int, list[LineRecord]] = {i: [] for i in ids}
    if not ids:
        return grouped
    chunks = [ids[i:i + IN_CHUNK] for i in range(0, len(ids), IN_CHUNK)]
    work = [(path, fields, parse, chunk) for path, fields, parse in COLLECTIONS for chunk in chunks]
    calls = [lambda p=path, f=fields, c=chunk: client.get_all(p, conditions=in_condition("invoice/id", c), fields=f)
             for path, fields, _parse, chunk in work]
    for (_path, _fields, parse, _chunk), records in zip(work, client.parallel(calls), strict=True):
        for record in records:
            line = parse(record, tolerant=True)
            if line.invoice_id in grouped:
                grouped[line.invoice_id].append(line)
    return grouped


def invoice_line_calls(client: Client, invoice_id: int, fields: Mapping[str, Sequence[str]] | None = None,
                       ) -> dict[str, Callable[[], list[dict]]]:
    """One call per line collection of one invoice, returning raw records, for the caller's own parallel round.

    ``fields`` maps a collection path to its projection (default: the records' own projections).
    """
    chosen = fields or {}
    return {path: partial(client.get_all, path, conditions=f"invoice/id={int(invoice_id)}",
                          fields=chosen.get(path, default))
            for path, default, _parse in COLLECTIONS}


def in_condition(field: str, ids: Sequence[int]) -> str:
    """``field in (1,2,3)`` from integers only."""
    return f"{field} in ({','.join(str(int(i)) for i in ids)})"
