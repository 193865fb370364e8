"""Typed failures of invoice reconstruction, and ``InvoiceUnavailable``: the one shape the media show them in.

``InvoiceNotFound`` means ConnectWise has no such invoice (a 404 page). ``InvalidInvoiceData`` means ConnectWise
answered with something we cannot read as an invoice; it is the records layer's ``InvalidRecord`` (itself a
``MalformedResponse``), so pages that already turn ConnectWise errors into "temporarily unavailable" (503) treat
it the same way. Messages carry ids and field names only, never invoice content, so they are safe to log and to
show. ``app.invoices.service`` turns these, a missing connection and every ConnectWise error into
``InvoiceUnavailable``, which the staff pages, the public page, the PDF job, the branding preview and the CLI
each map once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.connectwise import errors as cw_errors
from app.connectwise.records import InvalidRecord

# How long a public viewer is told to wait when ConnectWise could not be read for a reason that is not "busy".
UNREADABLE_RETRY_AFTER = 30


class InvoiceError(Exception):
    """Base of the invoice package's errors; ``str(exc)`` is fit to show."""


class InvoiceNotFound(InvoiceError):
    def __init__(self, invoice_id: int):
        super().__init__(f"ConnectWise has no invoice {int(invoice_id)}")
        self.invoice_id = int(invoice_id)


class InvalidInvoiceData(InvoiceError, InvalidRecord):
    """ConnectWise sent data we cannot use (wrong types, missing ids); retrying will not help."""

    def __init__(self, message: str, kind: str = "", field: str = ""):
        InvalidRecord.__init__(self, message, kind, field)


class InvoiceUnavailable(InvoiceError):
    """Why an invoice cannot be shown, once for every medium: ``status`` (HTTP), ``reason``, a message fit to show,
    and ``retry_after`` seconds when waiting helps (0 otherwise).

    Reasons: ``not_connected``, ``not_found``, ``busy``, ``unreadable`` (any other ConnectWise failure).
    """

    def __init__(self, message: str, status: int, reason: str, retry_after: int = 0):
        super().__init__(message)
        self.status, self.reason, self.retry_after = status, reason, retry_after

    @classmethod
    def not_connected(cls) -> InvoiceUnavailable:
        return cls("Connect ConnectWise first (Settings › ConnectWise).", 404, "not_connected")

    @classmethod
    def of(cls, exc: Exception) -> InvoiceUnavailable:
        """The failure of fetching or building an invoice, as shown."""
        if isinstance(exc, InvoiceUnavailable):
            return exc
        if isinstance(exc, InvoiceNotFound):
            return cls(f"ConnectWise has no invoice {exc.invoice_id}.", 404, "not_found")
        if isinstance(exc, cw_errors.Busy):
            return cls(cw_errors.BUSY_MESSAGE.format(seconds=exc.retry_after), 503, "busy", exc.retry_after)
        return cls(f"ConnectWise could not be read: {exc}. Try again in a minute.", 503, "unreadable")


@contextmanager
def invoice_data() -> Iterator[None]:
    """Inside: a record that does not read strictly surfaces as ``InvalidInvoiceData`` (same message)."""
    try:
        yield
    except InvalidInvoiceData:
        raise
    except InvalidRecord as exc:
        raise InvalidInvoiceData(str(exc), exc.kind, exc.field) from exc
