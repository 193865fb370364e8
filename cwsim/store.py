"""In-memory tables the simulator serves, with PATCH overrides kept for the life of the process.

Small collections are ``EagerTable`` (ready API-shaped dicts). Invoice line items dominate the data set at
scale, so ``LazyTable`` keeps them as compact rows and builds the API dict on access, with an index by
invoice id so ``conditions=invoice/id=N`` does not touch every row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any


class Table:
    """A collection of records addressable by id, optionally scoped to a parent id."""

    def ids(self, parent_id: int | None = None) -> list[int]:
        raise NotImplementedError

    def build(self, record_id: int) -> dict | None:
        raise NotImplementedError

    def parent_of(self, record_id: int) -> int | None:
        return None

    def __init__(self) -> None:
        self.overrides: dict[int, dict[str, Any]] = {}

    def get(self, record_id: int, parent_id: int | None = None) -> dict | None:
        if parent_id is not None and self.parent_of(record_id) != parent_id:
            return None
        record = self.build(record_id)
        if record is None:
            return None
        patch = self.overrides.get(record_id)
        if patch:
            record = dict(record)
            record.update(patch)
        return record

    def iter(self, parent_id: int | None = None, invoice_ids: set[int] | None = None) -> Iterator[dict]:
        for record_id in self.candidate_ids(parent_id, invoice_ids):
            record = self.get(record_id)
            if record is not None:
                yield record

    def candidate_ids(self, parent_id: int | None, invoice_ids: set[int] | None) -> Iterable[int]:
        return self.ids(parent_id)

    def set_fields(self, record_id: int, changes: dict[str, Any]) -> None:
        self.overrides.setdefault(record_id, {}).update(changes)

    def remove(self, record_id: int) -> None:
        """Forget a record (a DELETE); an unknown id is no error here (the caller answered 404 first)."""
        self.overrides.pop(record_id, None)


class EagerTable(Table):
    def __init__(self, records: Iterable[dict] = (), parents: dict[int, int] | None = None):
        super().__init__()
        self.records: dict[int, dict] = {}
        self.parents: dict[int, int] = {}
        self.children: dict[int, list[int]] = {}
        for record in records:
            self.add(record)

    def add(self, record: dict, parent_id: int | None = None) -> None:
        self.records[record["id"]] = record
        if parent_id is not None:
            self.parents[record["id"]] = parent_id
            self.children.setdefault(parent_id, []).append(record["id"])

    def ids(self, parent_id: int | None = None) -> list[int]:
        if parent_id is None:
            return sorted(self.records)
        return sorted(self.children.get(parent_id, ()))

    def build(self, record_id: int) -> dict | None:
        return self.records.get(record_id)

    def parent_of(self, record_id: int) -> int | None:
        return self.parents.get(record_id)

    def set_fields(self, record_id: int, changes: dict[str, Any]) -> None:
        # Eager records are the source of truth, so write through (keeps list and get consistent).
        self.records[record_id] = {**self.records[record_id], **changes}

    def remove(self, record_id: int) -> None:
        super().remove(record_id)
        self.records.pop(record_id, None)
        parent = self.parents.pop(record_id, None)
        if parent is not None:
            self.children[parent] = [i for i in self.children.get(parent, ()) if i != record_id]


class LazyTable(Table):
    """Compact rows built into API dicts on demand; ``invoice_of`` feeds the by-invoice index."""

    def __init__(
        self,
        builder: Callable[[Any], dict],
        invoice_of: Callable[[Any], int | None],
        parent_of: Callable[[Any], int | None] | None = None,
    ):
        super().__init__()
        self.rows: dict[int, Any] = {}
        # For parent-scoped children (payments, routings) the parent is the invoice, so one index serves both.
        self.by_invoice: dict[int, list[int]] = {}
        self.builder = builder
        self.invoice_of = invoice_of
        self._parent_of = parent_of

    def add(self, row_id: int, row: Any) -> None:
        self.rows[row_id] = row
        invoice_id = self.invoice_of(row)
        if invoice_id is not None:
            self.by_invoice.setdefault(invoice_id, []).append(row_id)

    def ids(self, parent_id: int | None = None) -> list[int]:
        if parent_id is None:
            return list(self.rows)
        return list(self.by_invoice.get(parent_id, ()))

    def candidate_ids(self, parent_id: int | None, invoice_ids: set[int] | None) -> Iterable[int]:
        if invoice_ids is None:
            return self.ids(parent_id)
        found = [rid for inv in invoice_ids for rid in self.by_invoice.get(inv, ())]
        return sorted(found)

    def parent_of(self, record_id: int) -> int | None:
        row = self.rows.get(record_id)
        return self._parent_of(row) if row is not None and self._parent_of else None

    def build(self, record_id: int) -> dict | None:
        row = self.rows.get(record_id)
        return None if row is None else self.builder(row)

    def remove(self, record_id: int) -> None:
        super().remove(record_id)
        row = self.rows.pop(record_id, None)
        invoice_id = self.invoice_of(row) if row is not None else None
        if invoice_id is not None:
            self.by_invoice[invoice_id] = [i for i in self.by_invoice.get(invoice_id, ()) if i != record_id]


class Dataset:
    """All tables plus the facts the seed wants tests to find (``cases``)."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self.cases: dict[str, list[int]] = {}
        self.meta: dict[str, Any] = {}
        # (audit type, record id) -> AuditTrailEntry dicts, oldest first (cwsim.audittrail).
        self.audit_trail: dict[tuple[str, int], list[dict]] = {}

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]
