"""The view model of an invoice: everything the document templates print, as strings, from a document and a
branding. The one source of both the web page and the PDF, so the two always show the same content.

It also owns what the document says about itself (``document_state``): a credit memo reads as a credit, a void
invoice carries VOID and no payment block, a paid one PAID and its payment date, a partly paid one what was paid
so far; only a balance the client still owes gets "How to pay" and the Pay button. Dates are in the workspace's
locale (``Branding.locale``, Babel's medium format).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date

from app.branding.model import Branding, TimeDetail, pay_url
from app.invoices.document import (
    SECTION_ORDER,
    InvoiceDocument,
    Section,
    format_hours,
    format_money,
    format_number,
    quantize,
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
# Display types that say nothing to a client: ConnectWise's internal default, or what the title already says.
SILENT_TYPES = ("Standard", "Credit Memo")


@dataclass(frozen=True)
class DocumentState:
    """What the document is, for the client: ``kind`` is credit | void | paid | nothing_due | partly_paid |
    overdue | open; ``payable`` when a balance is still owed (payment block, Pay button)."""

    kind: str
    label: str
    stamp: str = ""  # "PAID" | "VOID": the mark on the document
    paid_on: dt.date | None = None
    days_overdue: int = 0
    payable: bool = False


def _paid_on(doc: InvoiceDocument) -> dt.date | None:
    dates = [line.date for s in doc.sections if s.key in ("payments", "credits") for line in s.lines if line.date]
    return max(dates) if dates else None


def document_state(doc: InvoiceDocument, today: dt.date | None = None) -> DocumentState:
    """What the document tells the client it is (credit memo, void, paid, partly paid, overdue, open)."""
    t = doc.totals
    return invoice_state(credit_memo=doc.cw_type == "CreditMemo" or doc.display_type == "Credit Memo",
                         status=doc.status, balance=t.balance, settled=t.payments + t.credits,
                         due_date=doc.due_date, today=today, paid_on=_paid_on(doc))


def invoice_state(*, credit_memo: bool, status: str, balance: Decimal | None, settled: Decimal,
                  due_date: dt.date | None, today: dt.date | None = None,
                  paid_on: dt.date | None = None) -> DocumentState:
    """The one reading of what an invoice is, from its header alone: the document's and the invoices list's.

    ``settled`` is what was paid or credited against it (ConnectWise's payments + credits); ``balance`` None when it
    could not be read (counted as owed: better a second look than a missed unpaid invoice)."""
    if credit_memo:
        return DocumentState("credit", "Credit memo")
    # ConnectWise has no void flag: a void invoice is one whose billing status is named so (cwsim and the
    # shipped status list call it "Void").
    if "void" in status.casefold():
        return DocumentState("void", "Void", stamp="VOID")
    if balance is not None and balance <= 0:
        if settled > 0:
            return DocumentState("paid", "Paid", stamp="PAID", paid_on=paid_on)
        return DocumentState("nothing_due", "Nothing due")
    today = today or dt.date.today()
    late = (today - due_date).days if due_date and due_date < today else 0
    if settled > 0:
        return DocumentState("partly_paid", "Partly paid", paid_on=paid_on, days_overdue=late, payable=True)
    if late:
        return DocumentState("overdue", "Overdue", days_overdue=late, payable=True)
    return DocumentState("open", "Open", payable=True)


# Each state's badge colour (lists.css .badge.inv-*): nothing due reads as settled, a partly paid one as owed.
_BADGES = {"credit": "credit", "void": "void", "paid": "paid", "nothing_due": "paid", "overdue": "overdue",
           "open": "open"}


def state_badge(state: DocumentState) -> str:
    """The badge colour of a state, the same in the invoices list and on the invoice's preview."""
    if state.kind == "partly_paid":
        return "overdue" if state.days_overdue else "open"
    return _BADGES.get(state.kind, "open")


def babel_locale(tag: str) -> Locale:
    """The Babel locale of a tag such as "en-US" or "de_DE"; en-US when it is not one."""
    try:
        return Locale.parse((tag or "en-US").replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en_US")


def format_day(value: dt.date | None, locale: Locale) -> str:
    """A date in the locale's medium form: "Mar 5, 2026" (en-US), "05.03.2026" (de-DE), "5 Mar 2026" (en-GB)."""
    return format_date(value, "medium", locale=locale) if value is not None else ""


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


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


def _cell_text(doc: InvoiceDocument, section: Section, line: Any, key: str, locale: Locale) -> str:
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
        return format_day(value, locale)
    return "" if value is None else str(value)


def _qty(value: Decimal, cur: Any) -> str:
    """Quantities print without trailing zeros: 2, 2.5, 0.25 (with the currency's decimal separator)."""
    exponent = value.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return format_number(value, cur, min(places, 4))


def _section_view(doc: InvoiceDocument, section: Section, locale: Locale) -> SectionView:
    labels = {**COLUMN_LABELS, **SECTION_COLUMN_LABELS.get(section.key, {})}
    # A detail column nobody filled in is dropped so the description gets the room; a note shows in the
    # amount cell where there is one ("No charge"), in its own column where there is not.
    keys = [k for k in section.columns if k != "detail" or any(line.detail for line in section.lines)]
    keys = [k for k in keys if k != "note" or ("amount" not in keys and any(line.note for line in section.lines))]
    columns = tuple(Column(k, labels.get(k, ""), k in NUMERIC, _col_css(k)) for k in keys)
    rows = tuple(tuple(Cell(_cell_text(doc, section, line, c.key, locale), c.numeric, c.css) for c in columns)
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


def _detail_cell(doc: InvoiceDocument, entry: Any, key: str, locale: Locale) -> str:
    cur = doc.currency
    if key == "date":
        return format_day(entry.date, locale)
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


def view(doc: InvoiceDocument, branding: Branding, *, today: dt.date | None = None) -> dict[str, Any]:
    """Everything the templates print, as strings: the one source of both the page and the PDF."""
    cur = doc.currency
    locale = babel_locale(branding.locale)
    state = document_state(doc, today)
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
            rows = tuple(tuple(Cell(_detail_cell(doc, e, c.key, locale), c.numeric, c.css) for c in columns)
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
    totals = _totals(doc, state)
    credit = state.kind == "credit"
    meta = [("Credit memo number" if credit else "Invoice number", doc.number),
            ("Date", format_day(doc.date, locale))]
    if not credit:
        meta.append(("Due date", format_day(doc.due_date, locale)))
        if doc.terms:
            meta.append(("Terms", doc.terms))
    if state.paid_on:
        meta.append(("Paid on" if state.kind == "paid" else "Last payment", format_day(state.paid_on, locale)))
    if branding.show_po and doc.po_number:
        meta.append(("PO number", doc.po_number))
    if doc.reference:
        meta.append(("Reference", doc.reference))
    if doc.bill_to.account_number:
        meta.append(("Customer no.", doc.bill_to.account_number))
    if doc.applies_to:
        meta.append(("For", doc.applies_to))
    # PAID's date is the "Paid on" row of the meta above; VOID says in words what the mark means.
    stamp_note = "This invoice was cancelled. Nothing is due." if state.stamp == "VOID" else ""
    return {
        "doc": doc, "branding": branding, "currency": cur, "meta": meta,
        "title": "Credit memo" if credit else doc.title,
        "type_label": "" if doc.display_type in SILENT_TYPES else doc.display_type,
        "state": state, "stamp_note": stamp_note,
        "show_payment": bool(branding.payment_instructions) and state.payable,
        "sections": [_section_view(doc, s, locale) for s in charges],
        "settlements": [_section_view(doc, s, locale) for s in settlements],
        "totals": totals, "ship_to": ship_to,
        "detail_columns": columns, "detail_groups": groups,
        # A subtotal row with no figure to show (hours and amounts hidden) is only an empty label.
        "detail_subtotals": settings.subtotals and any(c.numeric for c in columns),
        "balance": format_money(doc.totals.balance, cur),
        "font": branding.font_info,
    }


def _totals(doc: InvoiceDocument, state: DocumentState) -> list[tuple[str, str, str]]:
    """The totals block's rows (label, amount, kind) as this document should state them."""
    cur, t = doc.currency, doc.totals
    credit = state.kind == "credit"
    # A credit memo's figures are printed as what the client is credited (positive), never as a negative due.
    sign = Decimal(-1) if credit else Decimal(1)
    rows = [("Subtotal", format_money(sign * t.subtotal, cur), "subtotal")]
    for tax in doc.tax_lines:
        if not tax.amount:
            continue  # a zero tax line (an exempt level, a 0 % code) tells the client nothing
        label = tax.caption + (f" ({format_number(tax.rate, cur, _rate_places(tax.rate))}%)" if tax.rate else "")
        rows.append((label, format_money(sign * tax.amount, cur), "tax"))
    if credit:
        rows.append(("Credit", format_money(-t.total, cur), "balance"))
        return rows
    rows.append(("Total", format_money(t.total, cur), "total"))
    if t.payments:
        label = "Paid so far" if state.kind == "partly_paid" else "Paid"
        rows.append((label, format_money(-t.payments, cur), "paid"))
    if t.credits:
        rows.append(("Credits", format_money(-t.credits, cur), "paid"))
    if state.kind == "void":
        rows.append(("Amount due", format_money(Decimal(0), cur), "balance"))
    else:
        rows.append(("Balance due", format_money(t.balance, cur), "balance"))
    return rows


def summary(doc: InvoiceDocument, branding: Branding, *, company: str = "",
            today: dt.date | None = None) -> dict[str, Any]:
    """The public page's summary above the document: amount due, due date, status, and the Pay link if any."""
    state = document_state(doc, today)
    locale = babel_locale(branding.locale)
    cur = doc.currency
    if state.kind == "credit":
        amount_label, amount = "Credit", format_money(-doc.totals.total, cur)
    elif state.kind == "void":
        amount_label, amount = "Amount due", format_money(Decimal(0), cur)
    else:
        amount_label, amount = "Amount due", format_money(max(doc.totals.balance, Decimal(0)), cur)
    status = state.label
    if state.days_overdue:
        late = f"{_days(state.days_overdue)} overdue"
        status = f"{state.label}, {late}" if state.kind == "partly_paid" else late.capitalize()
    elif state.kind == "paid" and state.paid_on:
        status = f"Paid on {format_day(state.paid_on, locale)}"
    # The balance goes as a plain number ("838.70"), whatever the currency prints: it is read by a machine.
    link = pay_url(branding.pay_url, number=doc.number, balance=str(quantize(doc.totals.balance, cur.decimals)),
                   currency=cur.code, company=company or doc.bill_to.name) if state.payable else ""
    return {"title": "Credit memo" if state.kind == "credit" else doc.title, "number": doc.number,
            "amount_label": amount_label, "amount": amount, "state": state, "status": status,
            "due_date": format_day(doc.due_date, locale) if state.payable else "",
            "pay_url": link}


def _rate_places(rate: Decimal) -> int:
    exponent = rate.normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # NaN or infinity: no digits to show
        return 0
    return min(3, max(0, -exponent))
