"""The invoice header (``finance/invoices/{id}``, and the rows of ``finance/invoices``)."""

from __future__ import annotations

import datetime as dt  # the `date` fields below would shadow the bare type
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from app.connectwise.records.currency import Currency, parse_currency
from app.connectwise.records.postal import PostalAddress
from app.connectwise.records.reader import InvalidRecord, Reader, Record

INVOICE_FIELDS = None  # the header is read whole: it is one record and most fields matter


@dataclass(frozen=True, kw_only=True)
class InvoiceHeader(Record):
    kind: ClassVar[str] = "invoice"
    number: str
    type: str
    status: str
    status_id: int | None
    company_id: int
    company_name: str
    bill_to_company_id: int | None
    bill_to_name: str
    ship_to_name: str
    account_number: str
    apply_to_type: str
    apply_to_id: int | None
    attention: str
    ship_to_attention: str
    billing_address: tuple[str, ...]
    shipping_address: tuple[str, ...]
    terms: str
    reference: str
    customer_po: str
    date: dt.date | None
    due_date: dt.date | None
    top_comment: str
    bottom_comment: str
    tax_code_id: int | None
    tax_code_name: str
    currency: Currency
    service_total: Decimal
    expense_total: Decimal
    product_total: Decimal
    previous_progress_applied: Decimal
    service_adjustment_amount: Decimal
    agreement_amount: Decimal
    downpayment_applied: Decimal
    subtotal: Decimal
    total: Decimal
    sales_tax: Decimal
    adjustment_reason: str
    payments: Decimal
    credits: Decimal
    balance: Decimal
    billing_setup_id: int | None
    ticket_id: int | None
    ticket_summary: str
    project_id: int | None
    project_name: str
    phase_id: int | None
    phase_name: str
    sales_order_id: int | None
    sales_order_identifier: str
    agreement_id: int | None
    agreement_name: str
    billing_postal: PostalAddress = PostalAddress()
    shipping_postal: PostalAddress = PostalAddress()

    @classmethod
    def parse(cls, data: Any, default_currency: Currency, *, tolerant: bool = False) -> InvoiceHeader:
        """Strict for one invoice; ``tolerant`` for list rows, where the total and balance must be present."""
        r = Reader(data, "invoice", tolerant=tolerant)
        try:
            currency = parse_currency(r.data.get("currency"), default_currency)
        except InvalidRecord:
            if not tolerant:
                raise
            currency = default_currency
            r.mark("currency")
        company_id = r.int_("company/id", required=not tolerant)
        if company_id is None and "company/id" not in r.degraded:
            r.mark("company/id")
        billing, shipping = _postal(r, "billingSite"), _postal(r, "shippingSite")
        return cls(
            number=r.str_("invoiceNumber"), type=r.str_("type") or "Standard",
            status=r.str_("status/name"), status_id=r.int_("status/id"), company_id=company_id or 0,
            company_name=r.str_("company/name"), bill_to_company_id=r.int_("billToCompany/id"),
            bill_to_name=r.str_("billToCompany/name"), ship_to_name=r.str_("shipToCompany/name"),
            account_number=r.str_("accountNumber"), apply_to_type=r.str_("applyToType") or "All",
            apply_to_id=r.int_("applyToId"), attention=r.str_("attention"),
            ship_to_attention=r.str_("shipToAttention"),
            billing_address=billing.us_lines(), shipping_address=shipping.us_lines(),
            billing_postal=billing, shipping_postal=shipping,
            terms=r.str_("billingTerms/name"), reference=r.str_("reference"), customer_po=r.str_("customerPO"),
            date=r.date_("date"), due_date=r.date_("dueDate"), top_comment=r.str_("topComment"),
            bottom_comment=r.str_("bottomComment"), tax_code_id=r.int_("taxCode/id"),
            tax_code_name=r.str_("taxCode/name"), currency=currency,
            service_total=r.dec("serviceTotal"), expense_total=r.dec("expenseTotal"),
            product_total=r.dec("productTotal"), previous_progress_applied=r.dec("previousProgressApplied"),
            service_adjustment_amount=r.dec("serviceAdjustmentAmount"), agreement_amount=r.dec("agreementAmount"),
            downpayment_applied=r.dec("downpaymentApplied"), subtotal=r.dec("subtotal"),
            total=r.dec("total", required=tolerant), sales_tax=r.dec("salesTax"),
            adjustment_reason=r.str_("adjustmentReason"), payments=r.dec("payments"), credits=r.dec("credits"),
            balance=r.dec("balance", required=tolerant), billing_setup_id=r.int_("billingSetupReference/id"),
            ticket_id=r.int_("ticket/id"), ticket_summary=r.str_("ticket/summary"), project_id=r.int_("project/id"),
            project_name=r.str_("project/name"), phase_id=r.int_("phase/id"), phase_name=r.str_("phase/name"),
            sales_order_id=r.int_("salesOrder/id"), sales_order_identifier=r.str_("salesOrder/identifier"),
            agreement_id=r.int_("agreement/id"), agreement_name=r.str_("agreement/name"),
            **r.record(),
        )


def _postal(r: Reader, prefix: str) -> PostalAddress:
    """The parts of the flattened ``billingSite*`` / ``shippingSite*`` fields."""
    return PostalAddress(r.str_(f"{prefix}AddressLine1"), r.str_(f"{prefix}AddressLine2"), r.str_(f"{prefix}City"),
                         r.str_(f"{prefix}State"), r.str_(f"{prefix}Zip"), r.str_(f"{prefix}Country"))
