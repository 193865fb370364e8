"""The rules about what an invoice charges: margins, credit memos, tax, large expenses, duplicates, zero-amount
lines and agreement totals that changed. Each is a pure function of an ``InvoiceView``, its settings and the
optional ``History``, yielding ``Finding``s."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from app.review.rules.history import History
from app.review.rules.invoice import (
    BILLABLE,
    InvoiceView,
    ProductLine,
    billable,
    day,
    number,
    percent,
    plural,
    quote,
    reads,
    time_label,
)
from app.review.rules.model import Finding

Settings = Mapping[str, Any]
HUNDRED = Decimal(100)


def _name(line: ProductLine) -> str:
    return quote(line.rec.description or line.rec.identifier, f"product line {line.rec.id}")


def low_margin(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    threshold = Decimal(cfg["threshold_percent"])
    if view.header.type == "CreditMemo":
        return  # a credit memo's lines are returns, not sales
    for line in view.products:
        p = line.rec
        if (p.billable != BILLABLE or line.cost is None or p.quantity < 0
                or not line.reads("price", "cost", "billableOption", "quantity")):
            continue
        price, cost = p.price, line.cost
        figures = f"price {view.money(price)}, cost {view.money(cost)}"
        if price == 0:
            if not cfg["ignore_zero_price"] and cost > 0:
                yield Finding("low_margin", "error", "product", p.id,
                              f"{_name(line)} is priced at zero below its cost: {figures}")
            continue
        if price < 0:
            continue
        margin = (price - cost) / price * HUNDRED
        if price < cost:
            yield Finding("low_margin", "error", "product", p.id,
                          f"{_name(line)} is priced below cost: {figures} (margin {percent(margin)})")
        elif margin < threshold:
            yield Finding("low_margin", "warning", "product", p.id,
                          f"Margin {percent(margin)} on {_name(line)} is below your {number(threshold)} % "
                          f"threshold: {figures}")


def credit_memo_positive_total(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    h = view.header
    if h.type == "CreditMemo" and reads(h, "total") and h.total > 0:
        yield Finding("credit_memo_positive_total", "error", "invoice", h.id,
                      f"Credit memo {h.number or '#' + str(h.id)} has a positive total of {view.money(h.total)}: it would charge "
                      f"the client instead of crediting them")


def no_tax_code(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    h = view.header
    if h.tax_code_id is None and reads(h, "taxCode/id", "taxCode"):
        yield Finding("no_tax_code", "warning", "invoice", h.id, f"Invoice {h.number or '#' + str(h.id)} has no tax code")


def product_not_taxable(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    classes = {c.casefold() for c in cfg["product_types"]}
    for line in billable_products(view):
        if line.rec.taxable or not line.reads("taxableFlag", "productClass"):
            continue
        if classes and line.product_class.casefold() not in classes:
            continue
        kind = f" ({line.product_class})" if line.product_class else ""
        yield Finding("product_not_taxable", "warning", "product", line.rec.id,
                      f"{_name(line)}{kind} is not marked taxable")


def billable_products(view: InvoiceView) -> list[ProductLine]:
    return [line for line in view.products if line.rec.billable == BILLABLE and line.reads("billableOption")]


def large_expense(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    threshold = Decimal(cfg["threshold"])
    for e in view.expenses:
        if reads(e, "invoiceAmount", "billAmount") and e.amount >= threshold:
            what = quote(e.type, "Expense")
            who = f" by {e.member}" if e.member else ""
            when = f" on {day(e.date)}" if e.date else ""
            yield Finding("large_expense", "warning", "expense", e.id,
                          f"{what} expense of {view.money(e.amount)}{who}{when} is at or above your "
                          f"{view.money(threshold)} threshold")


def duplicate_billing(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    counts: dict[int, int] = defaultdict(int)
    for t in view.times:
        counts[t.id] += 1
    said: set[int] = set()
    for t in view.times:
        if t.id in said:
            continue
        notes = []
        if counts[t.id] > 1:
            notes.append(f"appears {counts[t.id]} times on this invoice")
        elsewhere = (history.open_time_entries.get(t.id, {}) if history else {})
        others = sorted(n or f"#{i}" for i, n in elsewhere.items() if i != view.header.id)
        if others:
            notes.append(f"is also on open invoice{'s' if len(others) > 1 else ''} {', '.join(others)}")
        if notes:
            said.add(t.id)
            yield Finding("duplicate_billing", "warning", "time_entry", t.id,
                          f"Time entry {time_label(view, t)} {' and '.join(notes)}")
    groups: dict[tuple[str, str, Decimal, Decimal], list[ProductLine]] = defaultdict(list)
    for line in view.products:
        p = line.rec
        if line.reads("quantity", "price", "description", "customerDescription", "catalogItem/identifier"):
            groups[(p.identifier, p.description, p.quantity, p.price)].append(line)
    for lines in groups.values():
        if len(lines) < 2:
            continue
        first, *rest = sorted(lines, key=lambda x: (x.rec.sequence, x.rec.id))
        for line in rest:
            p = line.rec
            yield Finding("duplicate_billing", "warning", "product", p.id,
                          f"{_name(line)} ({number(p.quantity)} \u00d7 {view.money(p.price)}) is on this invoice "
                          f"{plural(len(lines), 'time')}: same item, description, quantity and price")


def zero_amount_line(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    for line in billable_products(view):
        if line.reads("extPrice") and line.rec.ext_price == 0:
            yield Finding("zero_amount_line", "info", "product", line.rec.id,
                          f"Billable line {_name(line)} has an amount of {view.money(Decimal(0))}")
    for t in billable(view.times):
        # Time an agreement covers is billable at nothing on purpose.
        if (reads(t, "extendedInvoiceAmount", "agreementHours", "billableOption") and t.extended == 0
                and t.agreement_hours == 0):
            yield Finding("zero_amount_line", "info", "time_entry", t.id,
                          f"Billable time {time_label(view, t, t.actual_hours)} has an amount of "
                          f"{view.money(Decimal(0))}")
    for e in billable(view.expenses):
        if reads(e, "invoiceAmount", "billAmount", "billableOption") and e.amount == 0:
            yield Finding("zero_amount_line", "info", "expense", e.id,
                          f"Billable {quote(e.type, 'expense')} expense has an amount of {view.money(Decimal(0))}")


def agreement_amount_changed(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    h = view.header
    if history is None or h.type != "Agreement" or h.agreement_id is None or not reads(h, "total", "date"):
        return
    previous = history.previous_on_agreement(h.agreement_id, h.id, h.date)
    if previous is None:
        return
    change = h.total - previous.total
    if change == 0 or abs(change) < Decimal(cfg["tolerance"]):
        return
    agreement = f" on agreement {quote(h.agreement_name, '')}" if h.agreement_name else ""
    when = f", {day(previous.date)}" if previous.date else ""
    yield Finding("agreement_amount_changed", "info", "invoice", h.id,
                  f"Total {view.money(h.total)}{agreement} is {view.money(abs(change))} "
                  f"{'more' if change > 0 else 'less'} than the previous invoice {previous.number} "
                  f"({view.money(previous.total)}{when})")
