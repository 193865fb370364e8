"""The view model of an invoice: everything the document templates print, as strings, from a document and a
branding. The one source of both the web page and the PDF, so the two always show the same content."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.branding.model import Branding, TimeDetail
from app.invoices.document import (
    SECTION_ORDER,
    InvoiceDocument,
    Section,
    format_hours,
    format_money,
    format_number,
)

COLUMN_LABELS = {"description": "Description", "detail": "", "date": "Date", "quantity": "Qty", "rate": "Rate",
                 "amount": "Amount", "note": "Billing"}
SECTION_COLUMN_LABELS = {
    "services": {"description": "Work role", "detail": "Work type", "quantity": "Hours", "rate": "Rate"},
    "agreement_services": {"description": "Work role", "detail": "Work type",
                           "quantity": "Hours covered / overage", "rate": "Rate covered / overage"},
    "non_billable_services": {"description": "Work role", "detail": "Work type", "quantity": "Hours"},
    "agreement": {"description": "Description", "detail": "Item", "quantity": "Qty", "rate": "Unit price"},
    "products": {"description": "Description", "detail": "Item", "quantity": "Qty", "rate": "Unit price"},
    "expenses": {"description": "Type", "detail": "Notes"},
    "payments": {"description": "Payment", "detail": "Reference"},
    "credits": {"description": "Credit", "detail": "Credit memo"},
}
NUMERIC = {"quantity", "rate", "amount"}
@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool = False
    css: str = ""


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool
    css: str  # width class, e.g. "c-desc", "c-num"


@dataclass(frozen=True)
class SectionView:
    key: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    subtotal: str | None
    charged: bool


@dataclass(frozen=True)
class DetailColumn:
    key: str
    label: str
    numeric: bool
    css: str


def _cell_text(doc: InvoiceDocument, section: Section, line: Any, key: str) -> str:
    cur = doc.currency
    value = getattr(line, key)
    if key == "quantity":
        if line.covered_quantity is not None:
            return f"{format_hours(line.covered_quantity, cur)} / {format_hours(value or Decimal(0), cur)}"
        if value is None:
            return ""
        return format_hours(value, cur) if section.key.endswith("services") else _qty(value, cur)
    if key == "rate":
        if line.covered_rate is not None:
            return f"{format_money(line.covered_rate, cur)} / {format_money(value or Decimal(0), cur)}"
        return "" if value is None else format_money(value, cur)
    if key == "amount":
        if value is None:
            return line.note or ""
        return format_money(value, cur)
    if key == "date":
        return _date(value)
    return "" if value is None else str(value)


def _qty(value: Decimal, cur: Any) -> str:
    """Quantities print without trailing zeros: 2, 2.5, 0.25 (with the currency's decimal separator)."""
    exponent = value.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return format_number(value, cur, min(places, 4))


def _date(value: Any) -> str:
    return value.strftime("%d %b %Y") if value is not None else ""


def _section_view(doc: InvoiceDocument, section: Section) -> SectionView:
    labels = {**COLUMN_LABELS, **SECTION_COLUMN_LABELS.get(section.key, {})}
    # A detail column nobody filled in is dropped so the description gets the room; a note shows in the
    # amount cell where there is one ("No charge"), in its own column where there is not.
    keys = [k for k in section.columns if k != "detail" or any(line.detail for line in section.lines)]
    keys = [k for k in keys if k != "note" or ("amount" not in keys and any(line.note for line in section.lines))]
    columns = tuple(Column(k, labels.get(k, ""), k in NUMERIC, _col_css(k)) for k in keys)
    rows = tuple(tuple(Cell(_cell_text(doc, section, line, c.key), c.numeric, c.css) for c in columns)
                 for line in section.lines)
    subtotal = format_money(section.subtotal, doc.currency) if section.subtotal is not None else None
    return SectionView(section.key, section.title, columns, rows, subtotal, section.counts_in_subtotal)


def _col_css(key: str) -> str:
    return {"description": "c-desc", "detail": "c-detail", "date": "c-date", "quantity": "c-qty",
            "rate": "c-rate", "amount": "c-amt", "note": "c-note"}.get(key, "")


def detail_columns(settings: TimeDetail) -> tuple[DetailColumn, ...]:
    """The time-detail table's columns for these settings (notes fall back to work role when off)."""
    cols = []
    if settings.dates:
        cols.append(DetailColumn("date", "Date", False, "c-date"))
    if settings.member:
        cols.append(DetailColumn("member", "Member", False, "c-member"))
    if settings.notes:
        cols.append(DetailColumn("notes", "Notes", False, "c-desc"))
    elif not settings.work_role:
        cols.append(DetailColumn("work_role", "Work role", False, "c-desc"))
    if settings.work_role:
        cols.append(DetailColumn("work_role", "Work role", False, "c-detail"))
    if settings.work_type:
        cols.append(DetailColumn("work_type", "Work type", False, "c-detail"))
    if settings.billable:
        cols.append(DetailColumn("billable", "Billable", False, "c-bill"))
    if settings.hours:
        cols.append(DetailColumn("hours", "Hours", True, "c-qty"))
    if settings.hourly_rate:
        cols.append(DetailColumn("rate", "Rate", True, "c-rate"))
    if settings.extended_amount:
        cols.append(DetailColumn("amount", "Amount", True, "c-amt"))
    return tuple(cols)


BILLABLE_LABELS = {"Billable": "Billable", "NoCharge": "No charge", "DoNotBill": "Not billed", "NoDefault": ""}


def _detail_cell(doc: InvoiceDocument, entry: Any, key: str) -> str:
    cur = doc.currency
    if key == "date":
        return _date(entry.date)
    if key == "hours":
        if entry.covered_hours:
            return f"{format_hours(entry.covered_hours, cur)} / {format_hours(entry.hours - entry.covered_hours, cur)}"
        return format_hours(entry.hours, cur)
    if key == "rate":
        return format_money(entry.rate, cur) if entry.rate is not None else ""
    if key == "amount":
        return format_money(entry.amount, cur)
    if key == "billable":
        return BILLABLE_LABELS.get(entry.billable, entry.billable)
    if key == "notes":
        return entry.notes or entry.work_role
    return str(getattr(entry, key) or "")


def view(doc: InvoiceDocument, branding: Branding) -> dict[str, Any]:
    """Everything the templates print, as strings: the one source of both the page and the PDF."""
    cur = doc.currency
    charges = [s for s in doc.sections if s.key in SECTION_ORDER]
    charges.sort(key=lambda s: SECTION_ORDER.index(s.key))
    settlements = [s for s in doc.sections if s.key not in SECTION_ORDER]
    settings = branding.time_detail_for(doc.time_detail_type)
    columns = detail_columns(settings)
    groups = []
    if settings.show and doc.time_detail and columns:
        for group in doc.time_detail:
            heading = " ".join(p for p in (group.ticket_number if settings.ticket_number else "",
                                           group.summary if settings.ticket_summary or not group.ticket_id
                                           else "") if p)
            rows = tuple(tuple(Cell(_detail_cell(doc, e, c.key), c.numeric, c.css) for c in columns)
                         for e in group.entries)
            sub = []
            for c in columns:
                if c.key == "hours":
                    sub.append(format_hours(group.hours, cur))
                elif c.key == "amount":
                    sub.append(format_money(group.amount, cur))
                else:
                    sub.append("")
            if not columns[0].numeric:
                sub[0] = "Subtotal"
            groups.append({"heading": heading or "Time", "rows": rows, "subtotal": tuple(sub)})
    ship_to = doc.ship_to if doc.ship_to and (doc.ship_to.name, doc.ship_to.address) != (
        doc.bill_to.name, doc.bill_to.address) else None
    totals = [("Subtotal", format_money(doc.totals.subtotal, cur), "subtotal")]
    for tax in doc.tax_lines:
        label = tax.caption + (f" ({format_number(tax.rate, cur, _rate_places(tax.rate))}%)" if tax.rate else "")
        totals.append((label, format_money(tax.amount, cur), "tax"))
    totals.append(("Total", format_money(doc.totals.total, cur), "total"))
    if doc.totals.payments:
        totals.append(("Payments", format_money(-doc.totals.payments, cur), "paid"))
    if doc.totals.credits:
        totals.append(("Credits", format_money(-doc.totals.credits, cur), "paid"))
    totals.append(("Balance due", format_money(doc.totals.balance, cur), "balance"))
    meta = [("Invoice number", doc.number), ("Date", _date(doc.date)), ("Due date", _date(doc.due_date))]
    if doc.terms:
        meta.append(("Terms", doc.terms))
    if branding.show_po and doc.po_number:
        meta.append(("PO number", doc.po_number))
    if doc.reference:
        meta.append(("Reference", doc.reference))
    if doc.bill_to.account_number:
        meta.append(("Account", doc.bill_to.account_number))
    if doc.applies_to:
        meta.append(("For", doc.applies_to))
    return {
        "doc": doc, "branding": branding, "currency": cur, "meta": meta,
        "sections": [_section_view(doc, s) for s in charges],
        "settlements": [_section_view(doc, s) for s in settlements],
        "totals": totals, "ship_to": ship_to,
        "detail_columns": columns, "detail_groups": groups,
        # A subtotal row with no figure to show (hours and amounts hidden) is only an empty label.
        "detail_subtotals": settings.subtotals and any(c.numeric for c in columns),
        "balance": format_money(doc.totals.balance, cur),
        "font": branding.font_info,
    }


def _rate_places(rate: Decimal) -> int:
    exponent = rate.normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # NaN or infinity: no digits to show
        return 0
    return min(3, max(0, -exponent))
