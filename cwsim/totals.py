"""An invoice's header amounts from its lines: the one formula the seed builds invoices with and a PATCH of a line
recomputes them by, as ConnectWise keeps them in step.

All in the invoice currency, rounded to its decimals::

    serviceTotal  = sum(time.extendedInvoiceAmount)            (invoiceHours * hourlyRate, billable only)
    productTotal  = sum(product.extPrice where Billable)       (price * quantity)
    expenseTotal  = sum(expense.invoiceAmount where Billable)
    subtotal      = service + product + expense + agreementAmount + serviceAdjustmentAmount
                    - previousProgressApplied - downpaymentApplied
    salesTax      = sum over tax levels of round(rate% * taxable base for that level)
    total         = subtotal + salesTax;  balance = total - payments - credits
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cwsim.seed.context import money
from cwsim.seed.reference import LEVEL_NAMES
from cwsim.serialize import iso
from cwsim.store import Dataset


@dataclass(frozen=True)
class Amounts:
    service: float
    product: float
    expense: float
    subtotal: float
    sales_tax: float
    total: float


def header_amounts(
    dec: int,
    tax_code: dict | None,
    time_amounts: Iterable[float],
    products: Iterable[tuple[float, bool, bool]],  # (extPrice, billable, taxable)
    expenses: Iterable[tuple[float, bool]],  # (invoiceAmount, billable)
    agreement_amount: float = 0.0,
    adjustment: float = 0.0,
    downpayment_applied: float = 0.0,
    previous_progress: float = 0.0,
) -> Amounts:
    products = list(products)
    service = money(sum(time_amounts), dec)
    product = money(sum(p for p, billable, _t in products if billable), dec)
    expense = money(sum(e for e, billable in expenses if billable), dec)
    subtotal = money(
        service + product + expense + agreement_amount + adjustment - previous_progress - downpayment_applied, dec
    )
    sales_tax = 0.0
    if tax_code:
        taxable_products = sum(p for p, billable, taxable in products if billable and taxable)
        services_base = service + agreement_amount + adjustment - previous_progress - downpayment_applied
        for word in LEVEL_NAMES:
            rate = tax_code.get(f"level{word}Rate")
            if rate is None:
                continue
            base = (
                (services_base if tax_code[f"level{word}ServicesFlag"] else 0.0)
                + (taxable_products if tax_code[f"level{word}ProductsFlag"] else 0.0)
                + (expense if tax_code[f"level{word}ExpensesFlag"] else 0.0)
            )
            sales_tax += money(base * rate / 100.0, dec)
        sales_tax = money(sales_tax, dec)
    return Amounts(service, product, expense, subtotal, sales_tax, money(subtotal + sales_tax, dec))


def balance(total: float, payments: float, credits: float, dec: int) -> float:
    return money(total - payments - credits, dec)


def recompute_invoice(data: Dataset, invoice_id: int, stamp: bool = True, amounts: bool = True) -> dict | None:
    """Bring an invoice's header amounts in step with its lines as they are now (unless not ``amounts``) and, with
    ``stamp``, bump its ``_info.lastUpdated``, as ConnectWise does when a line on it changes; the invoice, or None
    when unknown."""
    invoice = data["invoices"].get(invoice_id)
    if invoice is None:
        return None
    if not amounts:
        if stamp:
            info = dict(invoice.get("_info", {}))
            info["lastUpdated"] = iso(datetime.now(timezone.utc).replace(microsecond=0))
            data["invoices"].set_fields(invoice_id, {"_info": info})
        return data["invoices"].get(invoice_id)
    dec = invoice["currency"]["numberOfDecimals"]
    code_ref = invoice.get("taxCode")
    tax_code = data["taxCodes"].get(code_ref["id"]) if isinstance(code_ref, dict) and invoice.get("taxableFlag") else None
    only = {invoice_id}
    amounts = header_amounts(
        dec,
        tax_code,
        (t.get("extendedInvoiceAmount") or 0.0 for t in data["timeEntries"].iter(invoice_ids=only)),
        ((p.get("extPrice") or 0.0, p.get("billableOption") == "Billable", bool(p.get("taxableFlag")))
         for p in data["products"].iter(invoice_ids=only)),
        ((e.get("invoiceAmount") or 0.0, e.get("billableOption") == "Billable")
         for e in data["expenseEntries"].iter(invoice_ids=only)),
        invoice.get("agreementAmount") or 0.0,
        invoice.get("serviceAdjustmentAmount") or 0.0,
        invoice.get("downpaymentApplied") or 0.0,
        invoice.get("previousProgressApplied") or 0.0,
    )
    changes: dict[str, Any] = {
        "serviceTotal": amounts.service,
        "productTotal": amounts.product,
        "expenseTotal": amounts.expense,
        "subtotal": amounts.subtotal,
        "salesTax": amounts.sales_tax,
        "total": amounts.total,
        "balance": balance(amounts.total, invoice.get("payments") or 0.0, invoice.get("credits") or 0.0, dec),
    }
    if stamp:
        info = dict(invoice.get("_info", {}))
        info["lastUpdated"] = iso(datetime.now(timezone.utc).replace(microsecond=0))
        changes["_info"] = info
    data["invoices"].set_fields(invoice_id, changes)
    return data["invoices"].get(invoice_id)
