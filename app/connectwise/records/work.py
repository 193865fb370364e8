"""Projects and tickets, read only for how they bill (which decides an invoice's display type)."""

from __future__ import annotations

from typing import Any

from app.connectwise.records.reader import Reader

PROJECT_FIELDS = ("id", "name", "billingMethod")
TICKET_FIELDS = ("id", "summary", "billingMethod")
BILLING_METHODS = ("ActualRates", "FixedFee", "NotToExceed", "OverrideRate")


def billing_method(data: Any, kind: str, *, tolerant: bool = False) -> str:
    """A project's or ticket's billingMethod (one of ``BILLING_METHODS``, or "" when omitted or unreadable)."""
    return Reader(data, kind, tolerant=tolerant).str_("billingMethod")
