"""What the rules read: one invoice's raw ConnectWise payloads parsed, tolerantly, into typed records, and the
formatting the rules' messages use (money in the invoice's currency, hours, percentages, dates, quoted text).

Reading is tolerant on purpose. A record that is not an object or has no id is dropped (nothing could link a
flag to it), and a field of the wrong type reads as its default and is marked degraded; each rule checks that the
fields it needs are not degraded, so an unreadable record gives no finding for that rule rather than a crash or a
false alarm ("price 0" from an unreadable price). Unreadable data is not reported as a finding of its own: the
sweep reconstructs every invoice strictly from the same payloads, so such an invoice is already recorded as failed
with its reason, and a second report here would say the same thing under a rule key no tenant can configure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from types import MappingProxyType
from typing import Any, TypeVar

from app.connectwise.records import (
    USD,
    BillingSetupRecord,
    Currency,
    ExpenseRecord,
    InvalidRecord,
    InvoiceHeader,
    ProductRecord,
    Reader,
    Record,
    TimeRecord,
)
from app.invoices.document import format_hours, format_money
from app.invoices.service import InvoicePayloads

R = TypeVar("R", bound=Record)
T = TypeVar("T")
BILLABLE = "Billable"
QUOTE_LIMIT = 60
READ = ("procurement/products", "time/entries", "expense/entries", "setup")  # the collections rules read


@dataclass(frozen=True)
class ProductLine:
    """A product line with the two fields only review reads (unit cost, product class)."""

    rec: ProductRecord
    cost: Decimal | None
    product_class: str
    degraded: tuple[str, ...]

    def reads(self, *paths: str) -> bool:
        return not any(p in self.degraded for p in paths)


@dataclass(frozen=True)
class InvoiceView:
    header: InvoiceHeader
    currency: Currency
    products: tuple[ProductLine, ...]
    times: tuple[TimeRecord, ...]
    expenses: tuple[ExpenseRecord, ...]

    def money(self, amount: Decimal) -> str:
        return format_money(amount, self.currency)

    def hours(self, value: Decimal) -> str:
        return f"{format_hours(value, self.currency)} h"


def reads(record: Record, *paths: str) -> bool:
    """Whether none of ``paths`` read as a default because ConnectWise sent the wrong type."""
    return not any(p in record.degraded for p in paths)


def _records(raw: Any, parse: Callable[..., T]) -> list[T]:
    if not isinstance(raw, list | tuple):
        return []
    out: list[T] = []
    for item in raw:
        try:
            out.append(parse(item, tolerant=True))
        except InvalidRecord:
            continue
    return out


def _product(item: Any, tolerant: bool = True) -> ProductLine:
    rec = ProductRecord.parse(item, tolerant=True)
    r = Reader(item, "product", tolerant=True)
    cost, product_class = r.opt_dec("cost"), r.str_("productClass")
    return ProductLine(rec, cost, product_class, (*rec.degraded, *r.degraded))


def _currency(collections: Mapping[str, Any]) -> Currency:
    setup = collections.get("setup")
    if isinstance(setup, dict):
        try:
            return BillingSetupRecord.parse(setup, tolerant=True).currency or USD
        except InvalidRecord:
            pass
    return USD


def _plain(value: Any) -> Any:
    """Plain dicts and lists from the payloads' read-only values (concrete type checks: this is the hot path)."""
    if isinstance(value, MappingProxyType | dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def read_payloads(payloads: InvoicePayloads) -> InvoiceView | None:
    """The view of a snapshot's payloads, copying only the collections the rules read."""
    return read_invoice(_plain(payloads.header), {k: _plain(payloads.collections.get(k)) for k in READ})


def read_invoice(header: Any, collections: Mapping[str, Any]) -> InvoiceView | None:
    """The view of one invoice's plain JSON payloads; None when the header itself cannot be read."""
    try:
        h = InvoiceHeader.parse(header, _currency(collections), tolerant=True)
    except InvalidRecord:
        return None
    return InvoiceView(
        header=h, currency=h.currency,
        products=tuple(_records(collections.get("procurement/products"), _product)),
        times=tuple(_records(collections.get("time/entries"), TimeRecord.parse)),
        expenses=tuple(_records(collections.get("expense/entries"), ExpenseRecord.parse)))


# -- message formatting ------------------------------------------------------------------------------------------


def percent(value: Decimal) -> str:
    """A percentage as people write it: "8 %", "19.9 %", "-2.3 %" (cut toward zero, so 19.96 never reads 20)."""
    cut = value.quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    text = f"{abs(cut) if cut == 0 else cut:f}"
    return f"{text.removesuffix('.0')} %"


def number(value: Decimal) -> str:
    """A setting's number without trailing zeros: 20, 12.5, 0.01."""
    return f"{value.normalize():f}"


def quote(text: str, fallback: str) -> str:
    """``text`` in single quotes, cut to a readable length; ``fallback`` when it is empty."""
    text = " ".join(text.split())
    if not text:
        return fallback
    if len(text) > QUOTE_LIMIT:
        text = text[:QUOTE_LIMIT - 1].rstrip() + "\u2026"
    return f"'{text}'"


def day(value: dt.date) -> str:
    return f"{value.day} {value:%b %Y}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def time_label(view: InvoiceView, t: TimeRecord, hours: Decimal | None = None) -> str:
    """"1.50 h by Jane Doe on 3 Jun 2025": how a time entry is named in messages (its invoice hours by default)."""
    parts = [view.hours(t.hours if hours is None else hours)]
    if t.member:
        parts.append(f"by {t.member}")
    if t.date is not None:
        parts.append(f"on {day(t.date)}")
    return " ".join(parts)


def billable(items: Iterable[R]) -> list[R]:
    return [i for i in items if getattr(i, "billable", BILLABLE) == BILLABLE]
