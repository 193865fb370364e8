"""Typed failures of invoice reconstruction.

``InvoiceNotFound`` means ConnectWise has no such invoice (a 404 page). ``InvalidInvoiceData`` means ConnectWise
answered with something we cannot read as an invoice; it is also a ``MalformedResponse`` so pages that already
turn ConnectWise errors into "temporarily unavailable" (503) treat it the same way. Messages carry ids and field
names only, never invoice content, so they are safe to log and to show.
"""

from __future__ import annotations

from app.connectwise import errors as cw_errors


class InvoiceError(Exception):
    """Base of the invoice package's errors; ``str(exc)`` is fit to show."""


class InvoiceNotFound(InvoiceError):
    def __init__(self, invoice_id: int):
        super().__init__(f"ConnectWise has no invoice {int(invoice_id)}")
        self.invoice_id = int(invoice_id)


class InvalidInvoiceData(InvoiceError, cw_errors.MalformedResponse):
    """ConnectWise sent data we cannot use (wrong types, missing ids); retrying will not help."""

    retryable = False

    def __init__(self, message: str):
        InvoiceError.__init__(self, message)
        self.status = None
