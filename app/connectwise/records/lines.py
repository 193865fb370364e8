"""An invoice's line items: products (``procurement/products``), time and expense entries.

Each ``*_FIELDS`` is the ``fields=`` projection we ask for: only what we print (and ``_info/lastUpdated``, which
review's flags and inline edits key on), to keep responses small.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from app.connectwise.records.reader import Reader, Record

PRODUCT_FIELDS = ("id", "invoice/id", "catalogItem/identifier", "description", "customerDescription", "quantity",
                  "price", "extPrice", "billableOption", "taxableFlag", "sequenceNumber", "unitOfMeasure/name",
                  "cancelledFlag", "quantityCancelled", "agreement/id", "_info/lastUpdated",
                  "cost", "productClass")  # read only by review's margin and taxable rules, never printed
TIME_FIELDS = ("id", "invoice/id", "chargeToId", "chargeToType", "member/name", "member/identifier",
               "workRole/name", "workType/name", "timeStart", "actualHours", "hoursBilled", "invoiceHours",
               "hourlyRate", "overageRate", "agreementHours", "agreementAmount", "billableOption", "notes",
               "extendedInvoiceAmount", "ticket/id", "ticket/summary", "agreement/id", "agreement/name",
               "project/id", "project/name", "_info/lastUpdated")
EXPENSE_FIELDS = ("id", "invoice/id", "type/name", "member/name", "date", "amount", "invoiceAmount", "billAmount",
                  "billableOption", "notes", "ticket/id", "ticket/summary", "_info/lastUpdated")


@dataclass(frozen=True, kw_only=True)
class ProductRecord(Record):
    kind: ClassVar[str] = "product"
    invoice_id: int | None
    identifier: str
    description: str
    quantity: Decimal
    price: Decimal
    ext_price: Decimal  # ConnectWise's extPrice: what the line charges
    billable: str
    taxable: bool
    sequence: Decimal
    unit: str

    @classmethod
    def parse(cls, data: Any, *, tolerant: bool = False) -> ProductRecord:
        r = Reader(data, "product", tolerant=tolerant)
        return cls(invoice_id=r.int_("invoice/id"), identifier=r.str_("catalogItem/identifier"),
                   description=r.str_("customerDescription") or r.str_("description"),
                   quantity=r.dec("quantity"), price=r.dec("price"), ext_price=r.dec("extPrice"),
                   billable=r.str_("billableOption") or "Billable", taxable=r.bool_("taxableFlag"),
                   sequence=r.dec("sequenceNumber"), unit=r.str_("unitOfMeasure/name"), **r.record())


@dataclass(frozen=True, kw_only=True)
class TimeRecord(Record):
    kind: ClassVar[str] = "time"
    invoice_id: int | None
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
    def parse(cls, data: Any, *, tolerant: bool = False) -> TimeRecord:
        r = Reader(data, "time entry", tolerant=tolerant)
        hours = r.opt_dec("invoiceHours")
        if hours is None:
            hours = r.opt_dec("hoursBilled")
        actual = r.dec("actualHours")
        return cls(invoice_id=r.int_("invoice/id"), date=r.date_("timeStart"),
                   member=r.str_("member/name") or r.str_("member/identifier"), work_role=r.str_("workRole/name"),
                   work_type=r.str_("workType/name"), notes=r.str_("notes"),
                   billable=r.str_("billableOption") or "Billable", hours=actual if hours is None else hours,
                   actual_hours=actual, rate=r.dec("hourlyRate"), overage_rate=r.opt_dec("overageRate"),
                   agreement_hours=r.dec("agreementHours"), extended=r.dec("extendedInvoiceAmount"),
                   ticket_id=r.int_("ticket/id"), ticket_summary=r.str_("ticket/summary"),
                   agreement_id=r.int_("agreement/id"), charge_to_type=r.str_("chargeToType"),
                   project_name=r.str_("project/name"), **r.record())


@dataclass(frozen=True, kw_only=True)
class ExpenseRecord(Record):
    kind: ClassVar[str] = "expense"
    invoice_id: int | None
    date: date | None
    type: str
    member: str
    notes: str
    billable: str
    amount: Decimal  # invoiceAmount: what the invoice charges (billAmount when it is omitted)

    @classmethod
    def parse(cls, data: Any, *, tolerant: bool = False) -> ExpenseRecord:
        r = Reader(data, "expense entry", tolerant=tolerant)
        amount = r.opt_dec("invoiceAmount")
        return cls(invoice_id=r.int_("invoice/id"), date=r.date_("date"), type=r.str_("type/name"),
                   member=r.str_("member/name"), notes=r.str_("notes"),
                   billable=r.str_("billableOption") or "Billable",
                   amount=r.dec("billAmount") if amount is None else amount, **r.record())
