"""``History``: what the rules know beyond one invoice, and ``build_history``, which fills it from data the sweep
already holds (the payloads of every open invoice, and any invoice list rows it read).

Three things: the invoices on each agreement (for "agreement invoice amount changed"), the usual hourly rate of
each work role (the median of recent rates, per currency, for "rate differs from usual"), and which open invoices
carry each time entry (for "one time entry on two open invoices"). Without a ``History`` those checks stay quiet.

Where each comes from. The previous invoice on an agreement is usually closed, so the sweep reads it (one batched
``finance/invoices`` request for all the agreements, ``app.review.fetch``) and stores it with the agreement invoice,
in its payloads' ``AGREEMENT_INVOICES`` collection: the rules' input is then part of the snapshot (hashed, encrypted,
there for a settings change that may not call ConnectWise). The usual rate is the median over the open invoices'
own billable time (every open invoice is a recent one; closed invoices' time is not read: a time entry does not
say its currency, and reading it would cost pages in proportion to the tenant's volume). So the usual rate is
partial: a tenant with fewer than ``MIN_RATE_SAMPLES`` open entries of a role gets no finding for it.

An invoice's flags depend on the history too, so ``fold`` mixes the part of the history an invoice's rules read
into its rules digest: an unchanged snapshot is evaluated again exactly when that part moved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from app.connectwise.records import InvalidRecord, Reader
from app.invoices.service import InvoicePayloads
from app.review.rules.invoice import BILLABLE, InvoiceView, read_invoice

MIN_RATE_SAMPLES = 5  # fewer rates than this say nothing about what is usual
AGREEMENT_INVOICES = "agreement_invoices"  # payloads collection: the invoice before this one on its agreement


@dataclass(frozen=True)
class AgreementInvoice:
    invoice_id: int
    number: str
    date: dt.date | None
    total: Decimal


def _plain(value: Any) -> Any:
    """A stored row as plain JSON values again (payloads are read-only mappings all the way down)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class History:
    """``agreement_invoices``: agreement id -> its invoices; ``usual_rates``: (currency code, work role) -> median
    hourly rate; ``open_time_entries``: time entry id -> {open invoice id: invoice number}."""

    agreement_invoices: Mapping[int, tuple[AgreementInvoice, ...]] = field(default_factory=_empty)
    usual_rates: Mapping[tuple[str, str], Decimal] = field(default_factory=_empty)
    open_time_entries: Mapping[int, Mapping[int, str]] = field(default_factory=_empty)
    # invoice id -> what its rules look up: (agreement id, date) or None, (currency, work role)s, time entry ids
    lookups: Mapping[int, tuple[tuple[int, dt.date] | None, tuple[tuple[str, str], ...], tuple[int, ...]]] = field(
        default_factory=_empty, compare=False, repr=False)

    def previous_on_agreement(self, agreement_id: int, invoice_id: int,
                              day: dt.date | None) -> AgreementInvoice | None:
        """The invoice on the same agreement just before this one (by date, then id)."""
        if day is None:
            return None
        earlier = [a for a in self.agreement_invoices.get(agreement_id, ())
                   if a.invoice_id != invoice_id and a.date is not None and (a.date, a.invoice_id) < (day, invoice_id)]
        return max(earlier, key=lambda a: (a.date, a.invoice_id), default=None)

    def fold(self, digest: str, invoice_id: int) -> str:
        """``digest`` (the rules and settings) with what this history tells this invoice's rules."""
        agreement, roles, entries = self.lookups.get(invoice_id, (None, (), ()))
        previous = self.previous_on_agreement(agreement[0], invoice_id, agreement[1]) if agreement else None
        told = {"previous": [previous.invoice_id, previous.number, str(previous.date), str(previous.total)]
                if previous else None,
                "rates": [[c, r, str(self.usual_rates.get((c, r)))] for c, r in roles],
                "elsewhere": [[t, sorted((i, n) for i, n in self.open_time_entries.get(t, {}).items()
                                         if i != invoice_id)] for t in entries]}
        raw = json.dumps([digest, told], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


def accepts_history(evaluate: Callable[..., Any]) -> bool:
    """Whether an evaluate function takes ``history=`` (the rules' does; a test's stand-in may not)."""
    try:
        params = inspect.signature(evaluate).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "history" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def agreement_invoice(row: Any) -> tuple[int, AgreementInvoice] | None:
    """(agreement id, the invoice) from an agreement invoice's list row; None for any other or unreadable row."""
    try:
        r = Reader(row, "invoice", tolerant=True)
        agreement_id, total = r.int_("agreement/id"), r.opt_dec("total")
        if r.str_("type") != "Agreement" or agreement_id is None or total is None or r.degraded:
            return None
        return agreement_id, AgreementInvoice(r.int_("id", required=True) or 0, r.str_("invoiceNumber"),
                                              r.date_("date"), total)
    except InvalidRecord:
        return None


def _history_view(payloads: InvoicePayloads) -> InvoiceView | None:
    """The header, currency and time of an invoice: all the history reads (a third of what the rules read)."""
    return read_invoice(_plain(payloads.header), {name: _plain(payloads.collections.get(name))
                                                  for name in ("time/entries", "setup")})


def build_history(invoices: Iterable[Any] = (), payloads: Iterable[InvoicePayloads] = ()) -> History:
    """A ``History`` from raw invoice rows (``finance/invoices``, any status: the previous agreement invoice is
    usually closed) and the payloads of the open invoices (their headers count as rows too)."""
    agreements: dict[int, dict[int, AgreementInvoice]] = defaultdict(dict)
    rates: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
    entries: dict[int, dict[int, str]] = defaultdict(dict)
    lookups: dict[int, tuple[tuple[int, dt.date] | None, tuple[tuple[str, str], ...], tuple[int, ...]]] = {}
    rows: list[Any] = list(invoices)
    for p in payloads:
        view = _history_view(p)
        if view is None:
            continue
        h = view.header
        agreement = None
        if h.type == "Agreement" and h.agreement_id is not None and not {"total", "date"} & set(h.degraded):
            agreements[h.agreement_id][h.id] = AgreementInvoice(h.id, h.number, h.date, h.total)
            agreement = (h.agreement_id, h.date) if h.date is not None else None
        stored = p.collections.get(AGREEMENT_INVOICES)
        if isinstance(stored, tuple | list):
            rows.extend(_plain(row) for row in stored)
        for t in view.times:
            entries[t.id][view.header.id] = view.header.number
            if (t.billable == BILLABLE and t.work_role and t.rate > 0
                    and "hourlyRate" not in t.degraded):
                rates[(view.currency.code, t.work_role)].append(t.rate)
        lookups[h.id] = (agreement, tuple(sorted({(view.currency.code, t.work_role) for t in view.times
                                                   if t.work_role})), tuple(sorted({t.id for t in view.times})))
    for row in rows:
        found = agreement_invoice(row)
        if found is not None:  # an open invoice's own header (read just now) wins over a stored row of it
            agreements[found[0]].setdefault(found[1].invoice_id, found[1])
    return History(
        agreement_invoices=MappingProxyType({k: tuple(v.values()) for k, v in agreements.items()}),
        usual_rates=MappingProxyType({k: statistics.median(v) for k, v in rates.items()
                                      if len(v) >= MIN_RATE_SAMPLES}),
        open_time_entries=MappingProxyType({k: MappingProxyType(v) for k, v in entries.items()}),
        lookups=MappingProxyType(lookups))
