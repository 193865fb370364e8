"""Finance records around an invoice: agreement additions, payments, tax codes, the billing setup, billing
statuses and the invoice's review routing (``finance/invoices/{id}/routings``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from app.connectwise.records.currency import USD, Currency, parse_currency
from app.connectwise.records.postal import PostalAddress
from app.connectwise.records.reader import Reader, Record

ADDITION_FIELDS = ("id", "product/identifier", "quantity", "lessIncluded", "unitPrice", "billCustomer",
                   "effectiveDate", "cancelledDate", "invoiceDescription", "description", "extPrice",
                   "sequenceNumber", "agreementStatus", "uom", "_info/lastUpdated")
PAYMENT_FIELDS = ("id", "type", "amount", "paymentDate", "credit/id", "credit/identifier", "_info/lastUpdated")
BILLING_STATUS_FIELDS = ("id", "name", "sortOrder", "defaultFlag", "closedFlag", "inactiveFlag", "sentFlag",
                         "_info/lastUpdated")
ROUTING_FIELDS = ("id", "invoice/id", "sequenceNumber", "member/id", "member/identifier", "member/name",
                  "reviewedFlag", "dateReviewedUTC", "_info/lastUpdated")


@dataclass(frozen=True, kw_only=True)
class AdditionRecord(Record):
    kind: ClassVar[str] = "addition"
    identifier: str
    description: str
    quantity: Decimal  # quantity less what the agreement includes
    unit_price: Decimal
    ext_price: Decimal
    bill_customer: str
    effective: date | None
    cancelled: date | None
    sequence: Decimal

    @classmethod
    def parse(cls, data: Any, *, tolerant: bool = False) -> AdditionRecord:
        r = Reader(data, "agreement addition", tolerant=tolerant)
        quantity = r.dec("quantity") - r.dec("lessIncluded")
        unit = r.dec("unitPrice")
        ext = r.opt_dec("extPrice")
        return cls(identifier=r.str_("product/identifier"),
                   description=r.str_("invoiceDescription") or r.str_("description"), quantity=quantity,
                   unit_price=unit, ext_price=quantity * unit if ext is None else ext,
                   bill_customer=r.str_("billCustomer") or "Billable", effective=r.date_("effectiveDate"),
                   cancelled=r.date_("cancelledDate"), sequence=r.dec("sequenceNumber"), **r.record())

    def active_on(self, day: date | None) -> bool:
        if day is None:
            return self.cancelled is None
        return (self.effective is None or self.effective <= day) and (self.cancelled is None or self.cancelled > day)


@dataclass(frozen=True, kw_only=True)
class PaymentRecord(Record):
    kind: ClassVar[str] = "payment"
    type: str
    amount: Decimal
    date: date | None
    credit_identifier: str  # set when the "payment" is an applied credit memo

    @classmethod
    def parse(cls, data: Any, *, tolerant: bool = False) -> PaymentRecord:
        r = Reader(data, "invoice payment", tolerant=tolerant)
        return cls(type=r.str_("type") or "Payment", amount=r.dec("amount"), date=r.date_("paymentDate"),
                   credit_identifier=r.str_("credit/identifier"), **r.record())


@dataclass(frozen=True)
class TaxLevel:
    caption: str
    rate: Decimal
    percent: bool
    services: bool
    expenses: bool
    products: bool


@dataclass(frozen=True, kw_only=True)
class TaxCodeRecord(Record):
    kind: ClassVar[str] = "tax_code"
    identifier: str
    caption: str
    levels: tuple[TaxLevel, ...]

    @classmethod
    def parse(cls, data: Any, *, tolerant: bool = False) -> TaxCodeRecord:
        r = Reader(data, "tax code", tolerant=tolerant)
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
        return cls(identifier=r.str_("identifier"),
                   caption=r.str_("invoiceCaption") or r.str_("description") or r.str_("identifier"),
                   levels=tuple(levels), **r.record())


@dataclass(frozen=True, kw_only=True)
class BillingSetupRecord(Record):
    kind: ClassVar[str] = "billing_setup"
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
    postal: PostalAddress = PostalAddress()

    @classmethod
    def parse(cls, data: Any, *, tolerant: bool = False) -> BillingSetupRecord:
        r = Reader(data, "billing setup", tolerant=tolerant)
        postal = PostalAddress(r.str_("addressOne"), r.str_("addressTwo"), r.str_("city"),
                               r.str_("state/identifier") or r.str_("state/name"), r.str_("zip"),
                               r.str_("country/name"))
        currency = parse_currency(r.data["currency"], USD) if r.data.get("currency") is not None else None
        return cls(remit_name=r.str_("remitName"), payable_name=r.str_("payableName"),
                   address=postal.us_lines(), postal=postal,
                   phone=r.str_("phone"), title=r.str_("invoiceTitle"), footer=r.str_("invoiceFooter"),
                   business_number=r.str_("businessNumber"), currency=currency,
                   exclude_do_not_bill_time=r.bool_("excludeDoNotBillTimeFlag"),
                   exclude_do_not_bill_expense=r.bool_("excludeDoNotBillExpenseFlag"),
                   exclude_do_not_bill_product=r.bool_("excludeDoNotBillProductFlag"), **r.record())


@dataclass(frozen=True, kw_only=True)
class BillingStatusRecord(Record):
    kind: ClassVar[str] = "billing_status"
    name: str
    sort_order: int | None
    default: bool
    closed: bool
    inactive: bool
    sent: bool

    @classmethod
    def parse(cls, data: Any, *, tolerant: bool = False) -> BillingStatusRecord:
        r = Reader(data, "billing status", tolerant=tolerant)
        # An unreadable inactive flag reads as inactive: a status we cannot vouch for is not offered.
        return cls(name=r.str_("name"), sort_order=r.int_("sortOrder"), default=r.bool_("defaultFlag"),
                   closed=r.bool_("closedFlag"), inactive=r.bool_("inactiveFlag", "inactiveFlag" in r.data),
                   sent=r.bool_("sentFlag"), **r.record())


@dataclass(frozen=True, kw_only=True)
class RoutingRecord(Record):
    """One reviewer on an invoice's ConnectWise routing (InvoiceRouting): who, in which order, done or not."""

    kind: ClassVar[str] = "routing"
    invoice_id: int | None
    sequence: int | None
    member_id: int | None
    member_identifier: str
    member_name: str
    reviewed: bool
    reviewed_at: datetime | None

    @classmethod
    def parse(cls, data: Any, *, tolerant: bool = False) -> RoutingRecord:
        r = Reader(data, "invoice routing", tolerant=tolerant)
        return cls(invoice_id=r.int_("invoice/id"), sequence=r.int_("sequenceNumber"), member_id=r.int_("member/id"),
                   member_identifier=r.str_("member/identifier"), member_name=r.str_("member/name"),
                   reviewed=r.bool_("reviewedFlag"), reviewed_at=r.datetime_("dateReviewedUTC"), **r.record())
