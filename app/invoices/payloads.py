"""Typed, validated views of the ConnectWise records reconstruction reads.

ConnectWise omits null fields and adds new ones over time, so omitted fields get defaults and unknown ones are
ignored; a field that is present with the wrong type (an amount that is a string, an id that is not an int) is
refused with ``InvalidInvoiceData`` naming the record kind and field, never the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from app.invoices.document import Currency
from app.invoices.errors import InvalidInvoiceData

# fields= projections: only what we print, to keep responses small.
INVOICE_FIELDS = None  # the header is read whole: it is one record and most fields matter
PRODUCT_FIELDS = ("id", "invoice/id", "catalogItem/identifier", "description", "customerDescription", "quantity",
                  "price", "extPrice", "billableOption", "taxableFlag", "sequenceNumber", "unitOfMeasure/name",
                  "cancelledFlag", "quantityCancelled", "agreement/id")
TIME_FIELDS = ("id", "invoice/id", "chargeToId", "chargeToType", "member/name", "member/identifier",
               "workRole/name", "workType/name", "timeStart", "actualHours", "hoursBilled", "invoiceHours",
               "hourlyRate", "overageRate", "agreementHours", "agreementAmount", "billableOption", "notes",
               "extendedInvoiceAmount", "ticket/id", "ticket/summary", "agreement/id", "agreement/name",
               "project/id", "project/name")
EXPENSE_FIELDS = ("id", "invoice/id", "type/name", "member/name", "date", "amount", "invoiceAmount", "billAmount",
                  "billableOption", "notes", "ticket/id", "ticket/summary")
ADDITION_FIELDS = ("id", "product/identifier", "quantity", "lessIncluded", "unitPrice", "billCustomer",
                   "effectiveDate", "cancelledDate", "invoiceDescription", "description", "extPrice",
                   "sequenceNumber", "agreementStatus", "uom")
COMPANY_FIELDS = ("id", "name", "identifier", "taxIdentifier", "accountNumber", "phoneNumber")
PAYMENT_FIELDS = ("id", "type", "amount", "paymentDate", "credit/id", "credit/identifier")
PROJECT_FIELDS = ("id", "name", "billingMethod")
TICKET_FIELDS = ("id", "summary", "billingMethod")


class Reader:
    """Reads one record's fields with type checks; errors name ``kind`` and the field path."""

    def __init__(self, data: Any, kind: str):
        if not isinstance(data, dict):
            raise InvalidInvoiceData(f"ConnectWise sent a {kind} that is not an object")
        self.data, self.kind = data, kind

    def _raw(self, path: str) -> Any:
        value: Any = self.data
        for part in path.split("/"):
            if not isinstance(value, dict):
                if value is None:
                    return None
                raise self.bad(path, "an object")
            value = value.get(part)
        return value

    def bad(self, path: str, expected: str) -> InvalidInvoiceData:
        return InvalidInvoiceData(f"ConnectWise sent a {self.kind} whose {path} is not {expected}")

    def int_(self, path: str, required: bool = False) -> int | None:
        value = self._raw(path)
        if value is None:
            if required:
                raise InvalidInvoiceData(f"ConnectWise sent a {self.kind} without {path}")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.bad(path, "an integer")
        return value

    def str_(self, path: str) -> str:
        value = self._raw(path)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.bad(path, "text")
        return value.strip()

    def bool_(self, path: str, default: bool = False) -> bool:
        value = self._raw(path)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.bad(path, "true or false")
        return value

    def dec(self, path: str) -> Decimal:
        """A number as Decimal via its shortest repr (0.1 stays 0.1); omitted means 0."""
        value = self.opt_dec(path)
        return Decimal(0) if value is None else value

    def opt_dec(self, path: str) -> Decimal | None:
        value = self._raw(path)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.bad(path, "a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.bad(path, "a finite number")
        try:
            return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - repr of a finite float always parses
            raise self.bad(path, "a number") from exc

    def date_(self, path: str) -> date | None:
        value = self._raw(path)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.bad(path, "a date")
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        except ValueError as exc:
            raise self.bad(path, "a date") from exc


@dataclass(frozen=True)
class InvoiceHeader:
    id: int
    number: str
    type: str
    status: str
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
    date: date | None
    due_date: date | None
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

    @classmethod
    def parse(cls, data: Any, default_currency: Currency) -> InvoiceHeader:
        r = Reader(data, "invoice")
        currency = parse_currency(r.data.get("currency"), default_currency)
        return cls(
            id=r.int_("id", required=True) or 0, number=r.str_("invoiceNumber"), type=r.str_("type") or "Standard",
            status=r.str_("status/name"), company_id=r.int_("company/id", required=True) or 0,
            company_name=r.str_("company/name"), bill_to_company_id=r.int_("billToCompany/id"),
            bill_to_name=r.str_("billToCompany/name"), ship_to_name=r.str_("shipToCompany/name"),
            account_number=r.str_("accountNumber"), apply_to_type=r.str_("applyToType") or "All",
            apply_to_id=r.int_("applyToId"), attention=r.str_("attention"),
            ship_to_attention=r.str_("shipToAttention"),
            billing_address=_address(r, "billingSite"), shipping_address=_address(r, "shippingSite"),
            terms=r.str_("billingTerms/name"), reference=r.str_("reference"), customer_po=r.str_("customerPO"),
            date=r.date_("date"), due_date=r.date_("dueDate"), top_comment=r.str_("topComment"),
            bottom_comment=r.str_("bottomComment"), tax_code_id=r.int_("taxCode/id"),
            tax_code_name=r.str_("taxCode/name"), currency=currency,
            service_total=r.dec("serviceTotal"), expense_total=r.dec("expenseTotal"),
            product_total=r.dec("productTotal"), previous_progress_applied=r.dec("previousProgressApplied"),
            service_adjustment_amount=r.dec("serviceAdjustmentAmount"), agreement_amount=r.dec("agreementAmount"),
            downpayment_applied=r.dec("downpaymentApplied"), subtotal=r.dec("subtotal"), total=r.dec("total"),
            sales_tax=r.dec("salesTax"), adjustment_reason=r.str_("adjustmentReason"), payments=r.dec("payments"),
            credits=r.dec("credits"), balance=r.dec("balance"), billing_setup_id=r.int_("billingSetupReference/id"),
            ticket_id=r.int_("ticket/id"), ticket_summary=r.str_("ticket/summary"), project_id=r.int_("project/id"),
            project_name=r.str_("project/name"), phase_id=r.int_("phase/id"), phase_name=r.str_("phase/name"),
            sales_order_id=r.int_("salesOrder/id"), sales_order_identifier=r.str_("salesOrder/identifier"),
            agreement_id=r.int_("agreement/id"), agreement_name=r.str_("agreement/name"),
        )


def _address(r: Reader, prefix: str) -> tuple[str, ...]:
    """Printable address lines from the flattened ``billingSite*`` / ``shippingSite*`` fields."""
    line1, line2 = r.str_(f"{prefix}AddressLine1"), r.str_(f"{prefix}AddressLine2")
    city, state, zip_ = r.str_(f"{prefix}City"), r.str_(f"{prefix}State"), r.str_(f"{prefix}Zip")
    country = r.str_(f"{prefix}Country")
    town = " ".join(p for p in (", ".join(p for p in (city, state) if p), zip_) if p)
    return tuple(p for p in (line1, line2, town, country) if p)


def parse_currency(data: Any, default: Currency) -> Currency:
    """ConnectWise's CurrencyReference; the default (the billing setup's or USD) when it is omitted."""
    if data is None:
        return default
    r = Reader(data, "currency")
    decimals = r.int_("numberOfDecimals")
    if decimals is not None and not 0 <= decimals <= 6:
        raise r.bad("numberOfDecimals", "between 0 and 6")
    code = r.str_("currencyCode") or r.str_("currencyIdentifier") or default.code
    return Currency(
        code=code[:8], symbol=r.str_("symbol")[:8] if "symbol" in r.data else default.symbol,
        decimals=default.decimals if decimals is None else decimals,
        decimal_sep=_sep(r, "decimalSeparator", default.decimal_sep),
        group_sep=_sep(r, "thousandsSeparator", default.group_sep, allow_empty=True),
        symbol_first=not r.bool_("rightAlign", not default.symbol_first),
        negative_parentheses=r.bool_("negativeParenthesesFlag", default.negative_parentheses),
        show_symbol=r.bool_("displaySymbolFlag", default.show_symbol),
        show_code=r.bool_("displayIdFlag", default.show_code),
    )


def _sep(r: Reader, path: str, default: str, allow_empty: bool = False) -> str:
    if path not in r.data:
        return default
    value = r.data[path]
    if not isinstance(value, str) or len(value) > 1 or (not value and not allow_empty) or value.isdigit():
        raise r.bad(path, "a single separator character")
    return value


@dataclass(frozen=True)
class ProductRecord:
    id: int
    identifier: str
    description: str
    quantity: Decimal
    price: Decimal
    ext_price: Decimal
    billable: str
    taxable: bool
    sequence: Decimal
    unit: str

    @classmethod
    def parse(cls, data: Any) -> ProductRecord:
        r = Reader(data, "product")
        return cls(id=r.int_("id", required=True) or 0, identifier=r.str_("catalogItem/identifier"),
                   description=r.str_("customerDescription") or r.str_("description"),
                   quantity=r.dec("quantity"), price=r.dec("price"), ext_price=r.dec("extPrice"),
                   billable=r.str_("billableOption") or "Billable", taxable=r.bool_("taxableFlag"),
                   sequence=r.dec("sequenceNumber"), unit=r.str_("unitOfMeasure/name"))


@dataclass(frozen=True)
class TimeRecord:
    id: int
    date: date | None
    member: str
    work_role: str
    work_type: str
    notes: str
    billable: str
    hours: Decimal  # hours on the invoice (invoiceHours, else hoursBilled, else actualHours)
    actual_hours: Decimal
    rate: Decimal
    overage_rate: Decimal | None
    agreement_hours: Decimal
    extended: Decimal
    ticket_id: int | None
    ticket_summary: str
    agreement_id: int | None
    charge_to_type: str
    project_name: str

    @classmethod
    def parse(cls, data: Any) -> TimeRecord:
        r = Reader(data, "time entry")
        hours = r.opt_dec("invoiceHours")
        if hours is None:
            hours = r.opt_dec("hoursBilled")
        actual = r.dec("actualHours")
        return cls(id=r.int_("id", required=True) or 0, date=r.date_("timeStart"),
                   member=r.str_("member/name") or r.str_("member/identifier"), work_role=r.str_("workRole/name"),
                   work_type=r.str_("workType/name"), notes=r.str_("notes"),
                   billable=r.str_("billableOption") or "Billable", hours=actual if hours is None else hours,
                   actual_hours=actual, rate=r.dec("hourlyRate"), overage_rate=r.opt_dec("overageRate"),
                   agreement_hours=r.dec("agreementHours"), extended=r.dec("extendedInvoiceAmount"),
                   ticket_id=r.int_("ticket/id"), ticket_summary=r.str_("ticket/summary"),
                   agreement_id=r.int_("agreement/id"), charge_to_type=r.str_("chargeToType"),
                   project_name=r.str_("project/name"))


@dataclass(frozen=True)
class ExpenseRecord:
    id: int
    date: date | None
    type: str
    member: str
    notes: str
    billable: str
    amount: Decimal  # invoiceAmount: what the invoice charges

    @classmethod
    def parse(cls, data: Any) -> ExpenseRecord:
        r = Reader(data, "expense entry")
        amount = r.opt_dec("invoiceAmount")
        return cls(id=r.int_("id", required=True) or 0, date=r.date_("date"), type=r.str_("type/name"),
                   member=r.str_("member/name"), notes=r.str_("notes"),
                   billable=r.str_("billableOption") or "Billable",
                   amount=r.dec("billAmount") if amount is None else amount)


@dataclass(frozen=True)
class AdditionRecord:
    id: int
    identifier: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    ext_price: Decimal
    bill_customer: str
    effective: date | None
    cancelled: date | None
    sequence: Decimal

    @classmethod
    def parse(cls, data: Any) -> AdditionRecord:
        r = Reader(data, "agreement addition")
        quantity = r.dec("quantity") - r.dec("lessIncluded")
        unit = r.dec("unitPrice")
        ext = r.opt_dec("extPrice")
        return cls(id=r.int_("id", required=True) or 0, identifier=r.str_("product/identifier"),
                   description=r.str_("invoiceDescription") or r.str_("description"), quantity=quantity,
                   unit_price=unit, ext_price=quantity * unit if ext is None else ext,
                   bill_customer=r.str_("billCustomer") or "Billable", effective=r.date_("effectiveDate"),
                   cancelled=r.date_("cancelledDate"), sequence=r.dec("sequenceNumber"))

    def active_on(self, day: date | None) -> bool:
        if day is None:
            return self.cancelled is None
        return (self.effective is None or self.effective <= day) and (self.cancelled is None or self.cancelled > day)


@dataclass(frozen=True)
class PaymentRecord:
    id: int
    type: str
    amount: Decimal
    date: date | None
    credit_identifier: str

    @classmethod
    def parse(cls, data: Any) -> PaymentRecord:
        r = Reader(data, "invoice payment")
        return cls(id=r.int_("id", required=True) or 0, type=r.str_("type") or "Payment", amount=r.dec("amount"),
                   date=r.date_("paymentDate"), credit_identifier=r.str_("credit/identifier"))


@dataclass(frozen=True)
class TaxLevel:
    caption: str
    rate: Decimal
    percent: bool
    services: bool
    expenses: bool
    products: bool


@dataclass(frozen=True)
class TaxCodeRecord:
    id: int
    identifier: str
    caption: str
    levels: tuple[TaxLevel, ...]

    @classmethod
    def parse(cls, data: Any) -> TaxCodeRecord:
        r = Reader(data, "tax code")
        levels = []
        for word in ("One", "Two", "Three", "Four", "Five", "Six"):
            rate = r.opt_dec(f"level{word}Rate")
            if rate is None:
                continue
            levels.append(TaxLevel(caption=r.str_(f"level{word}Caption"), rate=rate,
                                   percent=(r.str_(f"level{word}RateType") or "Percent") == "Percent",
                                   services=r.bool_(f"level{word}ServicesFlag"),
                                   expenses=r.bool_(f"level{word}ExpensesFlag"),
                                   products=r.bool_(f"level{word}ProductsFlag")))
        return cls(id=r.int_("id", required=True) or 0, identifier=r.str_("identifier"),
                   caption=r.str_("invoiceCaption") or r.str_("description") or r.str_("identifier"),
                   levels=tuple(levels))


@dataclass(frozen=True)
class BillingSetupRecord:
    remit_name: str
    payable_name: str
    address: tuple[str, ...]
    phone: str
    title: str
    footer: str
    business_number: str
    currency: Currency | None
    exclude_do_not_bill_time: bool
    exclude_do_not_bill_expense: bool
    exclude_do_not_bill_product: bool

    @classmethod
    def parse(cls, data: Any) -> BillingSetupRecord:
        r = Reader(data, "billing setup")
        city, state, zip_ = r.str_("city"), r.str_("state/identifier") or r.str_("state/name"), r.str_("zip")
        town = " ".join(p for p in (", ".join(p for p in (city, state) if p), zip_) if p)
        address = tuple(p for p in (r.str_("addressOne"), r.str_("addressTwo"), town, r.str_("country/name")) if p)
        currency = parse_currency(r.data["currency"], Currency("USD", "$", 2, ".", ",", True)) \
            if r.data.get("currency") is not None else None
        return cls(remit_name=r.str_("remitName"), payable_name=r.str_("payableName"), address=address,
                   phone=r.str_("phone"), title=r.str_("invoiceTitle"), footer=r.str_("invoiceFooter"),
                   business_number=r.str_("businessNumber"), currency=currency,
                   exclude_do_not_bill_time=r.bool_("excludeDoNotBillTimeFlag"),
                   exclude_do_not_bill_expense=r.bool_("excludeDoNotBillExpenseFlag"),
                   exclude_do_not_bill_product=r.bool_("excludeDoNotBillProductFlag"))


@dataclass(frozen=True)
class CompanyRecord:
    id: int
    name: str
    tax_id: str
    account_number: str
    phone: str

    @classmethod
    def parse(cls, data: Any) -> CompanyRecord:
        r = Reader(data, "company")
        return cls(id=r.int_("id", required=True) or 0, name=r.str_("name"), tax_id=r.str_("taxIdentifier"),
                   account_number=r.str_("accountNumber"), phone=r.str_("phoneNumber"))


def billing_method(data: Any, kind: str) -> str:
    """A project's or ticket's billingMethod (ActualRates | FixedFee | NotToExceed | OverrideRate)."""
    return Reader(data, kind).str_("billingMethod")
