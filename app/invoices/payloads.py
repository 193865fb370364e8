"""The invoice's strict reading of ConnectWise: the header and currency, raising ``InvalidInvoiceData``.

The records themselves (and their ``fields=`` projections) live in ``app.connectwise.records``; this module is
where the invoices package reads them strictly, so a field with the wrong type is refused naming the record kind
and field, never the value. It re-exports the header record and the projections the invoice pipeline
(``app.invoices.service``) names, so the pipeline reads ConnectWise through one invoices-side module.
"""

from __future__ import annotations

from typing import Any

from app.connectwise.records import (  # noqa: F401 - the projections, named where the pipeline asks for them
    ADDITION_FIELDS,
    COMPANY_FIELDS,
    EXPENSE_FIELDS,
    PAYMENT_FIELDS,
    PRODUCT_FIELDS,
    PROJECT_FIELDS,
    TICKET_FIELDS,
    TIME_FIELDS,
    USD,
    Currency,
    InvoiceHeader,
)
from app.connectwise.records import parse_currency as _parse_currency
from app.invoices.errors import invoice_data


def parse_header(data: Any, default_currency: Currency = USD) -> InvoiceHeader:
    """One invoice header, strictly (``finance/invoices/{id}``)."""
    with invoice_data():
        return InvoiceHeader.parse(data, default_currency)


def parse_currency(data: Any, default: Currency) -> Currency:
    """ConnectWise's CurrencyReference; the default when omitted."""
    with invoice_data():
        return _parse_currency(data, default)
