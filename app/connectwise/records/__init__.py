"""The typed ConnectWise record layer: one frozen record per kind we read, ``Decimal`` money, one reader.

Every record keeps its ConnectWise ``id`` and ``_info.lastUpdated`` (``Record``); review's flags and inline edits
hang off those. ``reader`` owns the strict and tolerant modes and ``InvalidRecord``, the one parse error.
"""

from app.connectwise.records.company import COMPANY_FIELDS, MEMBER_FIELDS, CompanyRecord, Member
from app.connectwise.records.currency import USD, Currency, parse_currency
from app.connectwise.records.finance import (
    ADDITION_FIELDS,
    BILLING_STATUS_FIELDS,
    PAYMENT_FIELDS,
    ROUTING_FIELDS,
    AdditionRecord,
    BillingSetupRecord,
    BillingStatusRecord,
    PaymentRecord,
    RoutingRecord,
    TaxCodeRecord,
    TaxLevel,
)
from app.connectwise.records.invoice import INVOICE_FIELDS, InvoiceHeader
from app.connectwise.records.lines import (
    EXPENSE_FIELDS,
    PRODUCT_FIELDS,
    TIME_FIELDS,
    ExpenseRecord,
    ProductRecord,
    TimeRecord,
)
from app.connectwise.records.reader import InvalidRecord, Reader, Record
from app.connectwise.records.work import PROJECT_FIELDS, TICKET_FIELDS, billing_method

__all__ = [
    "ADDITION_FIELDS", "BILLING_STATUS_FIELDS", "COMPANY_FIELDS", "EXPENSE_FIELDS", "INVOICE_FIELDS",
    "MEMBER_FIELDS", "PAYMENT_FIELDS", "PRODUCT_FIELDS", "PROJECT_FIELDS", "ROUTING_FIELDS", "TICKET_FIELDS",
    "TIME_FIELDS", "USD", "AdditionRecord", "BillingSetupRecord", "BillingStatusRecord", "CompanyRecord",
    "Currency", "ExpenseRecord", "InvalidRecord", "InvoiceHeader", "Member", "PaymentRecord", "ProductRecord",
    "Reader", "Record", "RoutingRecord", "TaxCodeRecord", "TaxLevel", "TimeRecord", "billing_method",
    "parse_currency",
]
