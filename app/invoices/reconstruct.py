"""Reconstruction: one invoice's ConnectWise payloads → one InvoiceDocument (pure; no requests here).

The payloads are the parsed header and the raw answers that ``app.invoices.service`` fetched: its products, time
and expense entries, the billing setup (remit-to, business number), the bill-to company (tax id), the tax code
(caption, levels), the agreement's additions, payments, and the project or ticket when the display type depends
on its billing method.

Sections follow ConnectWise's own grouping (billable services summarised by work role and work type, agreement
time as covered / overage, non-billable services, agreement amounts and additions, products, expenses,
adjustments, tax, payments, credits). The totals shown are always ConnectWise's header figures; where our line
sums disagree with them we keep ConnectWise's figure, mark the document unreconciled and log which fields
disagreed (ids and field names only, never invoice content).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from app.connectwise import records as rec
from app.invoices.addresses import address_lines, country_code
from app.invoices.display_types import deciding_project, deciding_ticket, display_type
from app.invoices.document import (
    Currency,
    InvoiceDocument,
    Line,
    Party,
    Section,
    TaxLine,
    TicketGroup,
    TimeEntry,
    Totals,
    quantize,
)
from app.invoices.errors import InvalidInvoiceData, invoice_data

log = logging.getLogger(__name__)
ZERO = Decimal(0)
NOT_BILLED = ("NoCharge", "DoNotBill")


# -- building ----------------------------------------------------------------------------------------------------


def _records(raw: Any, parse: Callable[[Any], Any], kind: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInvoiceData(f"ConnectWise sent {kind} that are not a list")
    return [parse(r) for r in raw]


def build_document(h: rec.InvoiceHeader, fetched: dict[str, Any], tenant: str | None = None) -> InvoiceDocument:
    """The document from a parsed header and the raw answers (keys as in ``app.invoices.service``'s fetch).

    Every record is read strictly: one that does not read raises ``InvalidInvoiceData`` naming kind and field.
    """
    with invoice_data():
        return _build(h, fetched, tenant)


def _build(h: rec.InvoiceHeader, fetched: dict[str, Any], tenant: str | None) -> InvoiceDocument:
    setup = rec.BillingSetupRecord.parse(fetched["setup"]) if fetched.get("setup") is not None else None
    currency = h.currency
    company = rec.CompanyRecord.parse(fetched["company"]) if fetched.get("company") is not None else None
    tax_code = rec.TaxCodeRecord.parse(fetched["tax_code"]) if fetched.get("tax_code") is not None else None
    products = _records(fetched.get("procurement/products"), rec.ProductRecord.parse, "products")
    times = _records(fetched.get("time/entries"), rec.TimeRecord.parse, "time entries")
    expenses = _records(fetched.get("expense/entries"), rec.ExpenseRecord.parse, "expense entries")
    additions = _records(fetched.get("additions"), rec.AdditionRecord.parse, "agreement additions")
    payments = _records(fetched.get("payments"), rec.PaymentRecord.parse, "payments")

    if setup and setup.exclude_do_not_bill_time:
        times = [t for t in times if t.billable != "DoNotBill"]
    if setup and setup.exclude_do_not_bill_product:
        products = [x for x in products if x.billable != "DoNotBill"]
    if setup and setup.exclude_do_not_bill_expense:
        expenses = [e for e in expenses if e.billable != "DoNotBill"]

    mismatches: list[str] = []
    sections = [s for s in (
        *_service_sections(h, times, currency, mismatches),
        _agreement_section(h, additions, fetched.get("additions") is not None, mismatches),
        _product_section(h, products, mismatches),
        _expense_section(h, expenses, mismatches),
        _adjustment_section(h),
    ) if s is not None]
    header_subtotal = (h.service_total + h.product_total + h.expense_total + h.agreement_amount
                       + h.service_adjustment_amount - h.previous_progress_applied - h.downpayment_applied)
    if _q(header_subtotal, currency) != _q(h.subtotal, currency):
        mismatches.append("subtotal")
    tax_lines = _tax_lines(h, tax_code, products, mismatches)
    if _q(h.subtotal + h.sales_tax, currency) != _q(h.total, currency):
        mismatches.append("total")
    if _q(h.total - h.payments - h.credits, currency) != _q(h.balance, currency):
        mismatches.append("balance")
    sections.extend(_payment_sections(h, payments, mismatches))

    if mismatches:
        log.warning("invoice %d (tenant %s): %s disagree with ConnectWise's header; showing ConnectWise's figures",
                    h.id, tenant or "-", ", ".join(mismatches))
    totals = Totals(subtotal=h.subtotal, tax=h.sales_tax, total=h.total, payments=h.payments, credits=h.credits,
                    balance=h.balance, reconciled=not mismatches, mismatches=tuple(mismatches))

    bill_name = h.bill_to_name or h.company_name
    bill_to = Party(name=bill_name, address=address_lines(h.billing_postal), attention=h.attention,
                    country=country_code(h.billing_postal.country),
                    tax_id=company.tax_id if company else "",
                    account_number=h.account_number or (company.account_number if company else ""))
    ship_to = None
    if h.shipping_address or h.ship_to_name:
        ship_to = Party(name=h.ship_to_name or bill_name, address=address_lines(h.shipping_postal),
                        attention=h.ship_to_attention, country=country_code(h.shipping_postal.country))
    remit_to = None
    if setup and (setup.remit_name or setup.address):
        remit_to = Party(name=setup.remit_name or setup.payable_name, address=address_lines(setup.postal),
                         phone=setup.phone, country=country_code(setup.postal.country))

    return InvoiceDocument(
        id=h.id, number=h.number, cw_type=h.type, display_type=_display_type(h, fetched), date=h.date,
        due_date=h.due_date, terms=h.terms, po_number=h.customer_po, reference=h.reference, bill_to=bill_to,
        ship_to=ship_to, remit_to=remit_to, seller_business_number=setup.business_number if setup else "",
        customer_tax_id=company.tax_id if company else "", currency=currency, top_comment=h.top_comment,
        bottom_comment=h.bottom_comment, sections=tuple(sections), tax_lines=tuple(tax_lines), totals=totals,
        time_detail=_time_detail(times), company_id=h.company_id, company_name=h.company_name, status=h.status,
        title=_title(setup), footer=setup.footer if setup else "",
        tax_caption=(tax_code.caption if tax_code else "") or h.tax_code_name, applies_to=_applies_to(h),
        seller_name=(setup.payable_name or setup.remit_name) if setup else "",
    )


def _display_type(h: rec.InvoiceHeader, fetched: dict[str, Any]) -> str:
    """``display_types.display_type``, with the billing method of the project or ticket that was fetched."""
    project = fetched.get("project") if deciding_project(h) is not None else None
    ticket = fetched.get("ticket") if deciding_ticket(h) is not None else None
    return display_type(h, rec.billing_method(project, "project") if project is not None else "",
                        rec.billing_method(ticket, "ticket") if ticket is not None else "")


def _title(setup: rec.BillingSetupRecord | None) -> str:
    title = setup.title if setup else ""
    return title.title() if title and title.isupper() else (title or "Invoice")


def _applies_to(h: rec.InvoiceHeader) -> str:
    if h.phase_id is not None:
        return f"Phase: {h.phase_name}" if h.phase_name else ""
    if h.project_id is not None:
        return f"Project: {h.project_name}" if h.project_name else ""
    if h.sales_order_id is not None:
        return f"Sales order {h.sales_order_identifier or h.sales_order_id}"
    if h.agreement_id is not None:
        return f"Agreement: {h.agreement_name}" if h.agreement_name else ""
    if h.ticket_id is not None:
        return f"Ticket #{h.ticket_id}" + (f" – {h.ticket_summary}" if h.ticket_summary else "")
    return ""


def _q(value: Decimal, currency: Currency) -> Decimal:
    return quantize(value, currency.decimals)


def _agrees(ours: Decimal, theirs: Decimal, currency: Currency) -> bool:
    return _q(ours, currency) == _q(theirs, currency)


# -- sections ----------------------------------------------------------------------------------------------------


def _charged(t: rec.TimeRecord) -> bool:
    return t.billable == "Billable" or (t.billable == "NoDefault" and t.extended != 0)


def _sources(records: Iterable[rec.Record]) -> tuple[tuple[str, int], ...]:
    """(kind, ConnectWise id) of the records a printed line prints or summarises, in id order."""
    return tuple(sorted((r.kind, r.id) for r in records))


def _grouped(items: Iterable[Any], key: Callable[[Any], tuple]) -> list[tuple[tuple, list[Any]]]:
    groups: dict[tuple, list[Any]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0]))


def _service_sections(h: rec.InvoiceHeader, times: list[rec.TimeRecord], currency: Currency,
                      mismatches: list[str]) -> list[Section | None]:
    charged = [t for t in times if _charged(t)]
    plain = [t for t in charged if not t.agreement_hours]
    covered = [t for t in charged if t.agreement_hours]
    not_billed = [t for t in times if not _charged(t)]
    ours = sum((t.extended for t in charged), ZERO)
    if not _agrees(ours, h.service_total, currency):
        mismatches.append("serviceTotal")
    out: list[Section | None] = []
    cols = ("description", "detail", "quantity", "rate", "amount")
    covered_lines = tuple(
        Line(description=role or "Agreement time", detail=wtype,
             covered_quantity=sum((min(t.agreement_hours, t.hours) for t in g), ZERO),
             quantity=sum((max(t.hours - t.agreement_hours, ZERO) for t in g), ZERO),
             covered_rate=rate, rate=over, amount=sum((t.extended for t in g), ZERO), sources=_sources(g))
        for (role, wtype, rate, over), g in _grouped(
            covered, lambda t: (t.work_role, t.work_type, t.rate, t.overage_rate if t.overage_rate else t.rate)))
    covered_sum = sum((x.amount or ZERO for x in covered_lines), ZERO)
    if plain or (h.service_total and not covered):
        lines = tuple(Line(description=role or "Services", detail=wtype, quantity=sum((t.hours for t in g), ZERO),
                           rate=rate, amount=sum((t.extended for t in g), ZERO), sources=_sources(g))
                      for (role, wtype, rate), g in _grouped(plain, lambda t: (t.work_role, t.work_type, t.rate)))
        # CW's serviceTotal, less what the agreement-time section shows: the two always add up to CW's figure.
        out.append(Section("services", "Billable services", cols, lines, h.service_total - covered_sum))
    if covered:
        out.append(Section("agreement_services", "Agreement time", cols, covered_lines,
                           covered_sum if plain else h.service_total))
    if not_billed:
        lines = tuple(Line(description=role or "Services", detail=wtype,
                           quantity=sum((t.actual_hours or t.hours for t in g), ZERO),
                           note="No charge" if kind == "NoCharge" else "Not billed", sources=_sources(g))
                      for (role, wtype, kind), g in _grouped(not_billed,
                                                             lambda t: (t.work_role, t.work_type, t.billable)))
        out.append(Section("non_billable_services", "Non-billable services", ("description", "detail", "quantity",
                                                                              "note"), lines, None, False))
    return out


def _agreement_section(h: rec.InvoiceHeader, additions: list[rec.AdditionRecord], fetched: bool,
                       mismatches: list[str]) -> Section | None:
    if not h.agreement_amount and h.type != "Agreement":
        return None
    active = sorted((a for a in additions if a.active_on(h.date) and a.bill_customer == "Billable"),
                    key=lambda a: (a.sequence, a.id))
    title = h.agreement_name or "Agreement"
    cols = ("description", "detail", "quantity", "rate", "amount")
    if active and _agrees(sum((a.ext_price for a in active), ZERO), h.agreement_amount, h.currency):
        lines = tuple(Line(description=a.description or a.identifier, detail=a.identifier, quantity=a.quantity,
                           rate=a.unit_price, amount=a.ext_price, sources=_sources([a])) for a in active)
        return Section("agreement", title, cols, lines, h.agreement_amount)
    if fetched and active:
        # Prorations and base amounts are not in the API: list the additions, charge CW's agreement amount.
        mismatches.append("agreementAmount")
    lines = (Line(description=title, amount=h.agreement_amount),
             *(Line(description=a.description or a.identifier, detail=a.identifier, quantity=a.quantity,
                    sources=_sources([a])) for a in active))
    return Section("agreement", title, cols, tuple(lines), h.agreement_amount)


def _amount_and_note(amount: Decimal, billable: str) -> dict[str, Any]:
    """A line's amount and note by its billable flag: billed in full, no charge (zero), or not billed at all."""
    if billable == "Billable":
        return {"amount": amount, "note": ""}
    if billable == "NoCharge":
        return {"amount": ZERO, "note": "No charge"}
    return {"amount": None, "note": "Not billed"}


def _product_section(h: rec.InvoiceHeader, products: list[rec.ProductRecord], mismatches: list[str]) -> Section | None:
    ours = sum((x.ext_price for x in products if x.billable == "Billable"), ZERO)
    if not _agrees(ours, h.product_total, h.currency):
        mismatches.append("productTotal")
    if not products:
        return None
    lines = tuple(
        Line(description=x.description or x.identifier, detail=x.identifier, quantity=x.quantity, rate=x.price,
             sources=_sources([x]), **_amount_and_note(x.ext_price, x.billable))
        for x in sorted(products, key=lambda x: (x.sequence, x.id)))
    return Section("products", "Products", ("description", "detail", "quantity", "rate", "amount"), lines,
                   h.product_total)


def _expense_section(h: rec.InvoiceHeader, expenses: list[rec.ExpenseRecord], mismatches: list[str]) -> Section | None:
    ours = sum((e.amount for e in expenses if e.billable == "Billable"), ZERO)
    if not _agrees(ours, h.expense_total, h.currency):
        mismatches.append("expenseTotal")
    if not expenses:
        return None
    lines = tuple(
        Line(description=e.type or "Expense", detail=e.notes, date=e.date, sources=_sources([e]),
             **_amount_and_note(e.amount, e.billable))
        for e in sorted(expenses, key=lambda e: (e.date or date.min, e.id)))
    return Section("expenses", "Expenses", ("date", "description", "detail", "amount"), lines, h.expense_total)


def _adjustment_section(h: rec.InvoiceHeader) -> Section | None:
    lines = []
    if h.service_adjustment_amount:
        lines.append(Line(description=h.adjustment_reason or "Adjustment", amount=h.service_adjustment_amount))
    if h.previous_progress_applied:
        lines.append(Line(description="Previous progress billing applied", amount=-h.previous_progress_applied))
    if h.downpayment_applied:
        lines.append(Line(description="Down payment applied", amount=-h.downpayment_applied))
    if not lines:
        return None
    return Section("adjustments", "Adjustments", ("description", "amount"), tuple(lines),
                   sum((x.amount or ZERO for x in lines), ZERO))


def _tax_lines(h: rec.InvoiceHeader, code: rec.TaxCodeRecord | None, products: list[rec.ProductRecord],
               mismatches: list[str]) -> list[TaxLine]:
    caption = (code.caption if code else "") or h.tax_code_name or "Tax"
    if code is None or not code.levels:
        return [TaxLine(caption, h.sales_tax)] if (h.sales_tax or h.tax_code_id) else []
    taxable_products = sum((x.ext_price for x in products if x.billable == "Billable" and x.taxable), ZERO)
    services = h.service_total + h.agreement_amount + h.service_adjustment_amount - h.downpayment_applied
    computed: list[TaxLine] = []
    # CW does not document its rounding of a tax level at exactly half a cent (.NET rounds half to even by
    # default, SQL Server half away from zero): take whichever reproduces CW's salesTax.
    for rounding in (ROUND_HALF_UP, ROUND_HALF_EVEN):
        computed = []
        for level in code.levels:
            base = ((services if level.services else ZERO) + (taxable_products if level.products else ZERO)
                    + (h.expense_total if level.expenses else ZERO))
            amount = quantize(base * level.rate / 100, h.currency.decimals, rounding) if level.percent \
                else _q(level.rate, h.currency)
            computed.append(TaxLine(level.caption or caption, amount, level.rate if level.percent else None))
        if _agrees(sum((t.amount for t in computed), ZERO), h.sales_tax, h.currency):
            break
    else:
        # Avalara, single-unit rules or taxable maximums: CW knows, the API does not say. Show CW's one figure.
        mismatches.append("salesTax levels")
        return [TaxLine(caption, h.sales_tax)]
    if len(computed) == 1:
        return [TaxLine(caption, h.sales_tax, computed[0].rate)]
    shown = [t for t in computed if t.amount]
    return shown or [TaxLine(caption, h.sales_tax)]


def _payment_sections(h: rec.InvoiceHeader, records: list[rec.PaymentRecord], mismatches: list[str]) -> list[Section]:
    out = []
    for key, title, figure, rows in (
        ("payments", "Payments", h.payments, [r for r in records if not r.credit_identifier]),
        ("credits", "Credits", h.credits, [r for r in records if r.credit_identifier]),
    ):
        if not figure:
            continue
        cols = ("date", "description", "detail", "amount")
        if rows and _agrees(sum((r.amount for r in rows), ZERO), figure, h.currency):
            lines = tuple(Line(description=r.type, detail=r.credit_identifier, date=r.date, amount=r.amount,
                               sources=_sources([r]))
                          for r in sorted(rows, key=lambda r: (r.date or date.min, r.id)))
        else:
            if rows:
                mismatches.append(key)
            # ConnectWise's figure stands for the rows that did not add up to it.
            lines = (Line(description=title, amount=figure, sources=_sources(rows)),)
        out.append(Section(key, title, cols, lines, figure, False))
    return out


def _time_detail(times: list[rec.TimeRecord]) -> tuple[TicketGroup, ...]:
    groups: dict[int | None, list[rec.TimeRecord]] = {}
    for t in times:
        groups.setdefault(t.ticket_id, []).append(t)
    out = []
    for ticket_id in sorted(groups, key=lambda k: (k is None, k or 0)):
        rows = sorted(groups[ticket_id], key=lambda t: (t.date or date.min, t.id))
        entries = tuple(TimeEntry(
            id=t.id, date=t.date, member=t.member, work_role=t.work_role, work_type=t.work_type, notes=t.notes,
            billable=t.billable, hours=t.hours if _charged(t) else (t.actual_hours or t.hours),
            rate=t.rate if _charged(t) else None, amount=t.extended if _charged(t) else ZERO,
            covered_hours=t.agreement_hours or None) for t in rows)
        summary = next((t.ticket_summary for t in rows if t.ticket_summary), "")
        if ticket_id is None:
            summary = next((t.project_name for t in rows if t.project_name), "") or "Other time"
        out.append(TicketGroup(ticket_id=ticket_id, ticket_number=f"#{ticket_id}" if ticket_id else "",
                               summary=summary, entries=entries, hours=sum((e.hours for e in entries), ZERO),
                               amount=sum((e.amount for e in entries), ZERO)))
    return tuple(out)
