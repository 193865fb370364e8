"""Typed views of the ConnectWise payloads we use; tolerant of omitted and unknown fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MEMBER_FIELDS = ("id", "identifier", "firstName", "lastName", "officeEmail", "primaryEmail", "inactiveFlag")
PRODUCT_FIELDS = ("id", "invoice/id", "catalogItem/identifier", "description", "quantity", "price", "cost",
                  "extendedPrice", "billableOption", "taxableFlag")
TIME_FIELDS = ("id", "invoice/id", "chargeToId", "chargeToType", "member/identifier", "workRole/name",
               "workType/name", "timeStart", "actualHours", "hoursBilled", "hourlyRate", "billableOption", "notes")
EXPENSE_FIELDS = ("id", "invoice/id", "type/name", "member/identifier", "date", "amount", "invoiceAmount",
                  "billableOption", "notes")


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _ref_id(value: Any) -> int | None:
    if isinstance(value, dict) and isinstance(value.get("id"), int):
        return value["id"]
    return None


@dataclass(frozen=True)
class Member:
    id: int
    identifier: str
    name: str
    email: str
    active: bool

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Member | None:
        """None for a record without a usable id (never trust ConnectWise to send one)."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            return None
        name = " ".join(p for p in (_str(data.get("firstName")), _str(data.get("lastName"))) if p)
        email = (_str(data.get("officeEmail")) or _str(data.get("primaryEmail"))).lower()
        return cls(id=data["id"], identifier=_str(data.get("identifier")), name=name[:200],
                   email=email if "@" in email[1:-1] and len(email) <= 320 else "",
                   active=not bool(data.get("inactiveFlag", False)))


@dataclass(frozen=True)
class Line:
    """A product, time or expense line of an invoice, reduced to what reconstruction and rules need."""

    kind: str
    id: int
    invoice_id: int | None
    description: str
    quantity: float
    amount: float

    @classmethod
    def product(cls, d: dict[str, Any]) -> Line:
        return cls("product", int(d.get("id", 0)), _ref_id(d.get("invoice")), _str(d.get("description")),
                   _num(d.get("quantity")), _num(d.get("extendedPrice", _num(d.get("price")) * _num(d.get("quantity")))))

    @classmethod
    def time(cls, d: dict[str, Any]) -> Line:
        hours = _num(d.get("hoursBilled", d.get("actualHours")))
        return cls("time", int(d.get("id", 0)), _ref_id(d.get("invoice")), _str(d.get("notes")), hours,
                   hours * _num(d.get("hourlyRate")))

    @classmethod
    def expense(cls, d: dict[str, Any]) -> Line:
        return cls("expense", int(d.get("id", 0)), _ref_id(d.get("invoice")), _str(d.get("notes")), 1.0,
                   _num(d.get("invoiceAmount", d.get("amount"))))
