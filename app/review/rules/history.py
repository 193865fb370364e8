"""``History``: what the rules know beyond one invoice, and ``build_history``, which fills it from data the sweep
already holds (the invoice list rows it read, and the payloads of the invoices it snapshots).

Three things: the invoices on each agreement (for "agreement invoice amount changed"), the usual hourly rate of
each work role (the median of recent rates, per currency, for "rate differs from usual"), and which open invoices
carry each time entry (for "one time entry on two open invoices"). Without a ``History`` those checks stay quiet.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from app.connectwise.records import InvalidRecord, Reader
from app.invoices.service import InvoicePayloads
from app.review.rules.invoice import BILLABLE, read_payloads

MIN_RATE_SAMPLES = 5  # fewer rates than this say nothing about what is usual


@dataclass(frozen=True)
class AgreementInvoice:
    invoice_id: int
    number: str
    date: dt.date | None
    total: Decimal


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class History:
    """``agreement_invoices``: agreement id -> its invoices; ``usual_rates``: (currency code, work role) -> median
    hourly rate; ``open_time_entries``: time entry id -> {open invoice id: invoice number}."""

    agreement_invoices: Mapping[int, tuple[AgreementInvoice, ...]] = field(default_factory=_empty)
    usual_rates: Mapping[tuple[str, str], Decimal] = field(default_factory=_empty)
    open_time_entries: Mapping[int, Mapping[int, str]] = field(default_factory=_empty)

    def previous_on_agreement(self, agreement_id: int, invoice_id: int,
                              day: dt.date | None) -> AgreementInvoice | None:
        """The invoice on the same agreement just before this one (by date, then id)."""
        if day is None:
            return None
        earlier = [a for a in self.agreement_invoices.get(agreement_id, ())
                   if a.invoice_id != invoice_id and a.date is not None and (a.date, a.invoice_id) < (day, invoice_id)]
        return max(earlier, key=lambda a: (a.date, a.invoice_id), default=None)


def _agreement_invoice(row: Any) -> tuple[int, AgreementInvoice] | None:
    try:
        r = Reader(row, "invoice", tolerant=True)
        agreement_id, total = r.int_("agreement/id"), r.opt_dec("total")
        if r.str_("type") != "Agreement" or agreement_id is None or total is None or r.degraded:
            return None
        return agreement_id, AgreementInvoice(r.int_("id", required=True) or 0, r.str_("invoiceNumber"),
                                              r.date_("date"), total)
    except InvalidRecord:
        return None


def build_history(invoices: Iterable[Any] = (), payloads: Iterable[InvoicePayloads] = ()) -> History:
    """A ``History`` from raw invoice rows (``finance/invoices``, any status: the previous agreement invoice is
    usually closed) and the payloads of the open invoices (their headers count as rows too)."""
    agreements: dict[int, dict[int, AgreementInvoice]] = defaultdict(dict)
    rates: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
    entries: dict[int, dict[int, str]] = defaultdict(dict)
    for p in payloads:
        view = read_payloads(p)
        if view is None:
            continue
        h = view.header
        if h.type == "Agreement" and h.agreement_id is not None and not {"total", "date"} & set(h.degraded):
            agreements[h.agreement_id][h.id] = AgreementInvoice(h.id, h.number, h.date, h.total)
        for t in view.times:
            entries[t.id][view.header.id] = view.header.number
            if (t.billable == BILLABLE and t.work_role and t.rate > 0
                    and "hourlyRate" not in t.degraded):
                rates[(view.currency.code, t.work_role)].append(t.rate)
    for row in invoices:
        found = _agreement_invoice(row)
        if found is not None:
            agreements[found[0]].setdefault(found[1].invoice_id, found[1])
    return History(
        agreement_invoices=MappingProxyType({k: tuple(v.values()) for k, v in agreements.items()}),
        usual_rates=MappingProxyType({k: statistics.median(v) for k, v in rates.items()
                                      if len(v) >= MIN_RATE_SAMPLES}),
        open_time_entries=MappingProxyType({k: MappingProxyType(v) for k, v in entries.items()}))
