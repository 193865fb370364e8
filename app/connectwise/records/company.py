"""People and organisations: the bill-to company and the MSP's own members (staff, for member sync)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from app.connectwise.records.reader import InvalidRecord, Reader, Record

COMPANY_FIELDS = ("id", "name", "identifier", "taxIdentifier", "accountNumber", "phoneNumber", "_info/lastUpdated")
MEMBER_FIELDS = ("id", "identifier", "firstName", "lastName", "officeEmail", "primaryEmail", "inactiveFlag",
                 "_info/lastUpdated")


@dataclass(frozen=True, kw_only=True)
class CompanyRecord(Record):
    kind: ClassVar[str] = "company"
    name: str
    tax_id: str
    account_number: str
    phone: str

    @classmethod
    def parse(cls, data: Any, *, tolerant: bool = False) -> CompanyRecord:
        r = Reader(data, "company", tolerant=tolerant)
        return cls(name=r.str_("name"), tax_id=r.str_("taxIdentifier"), account_number=r.str_("accountNumber"),
                   phone=r.str_("phoneNumber"), **r.record())


@dataclass(frozen=True, kw_only=True)
class Member(Record):
    kind: ClassVar[str] = "member"
    identifier: str
    name: str
    email: str  # lower-cased; "" when ConnectWise has none that looks like an address
    active: bool

    @classmethod
    def from_api(cls, data: Any) -> Member | None:
        """Tolerant: None for a record without a usable id (never trust ConnectWise to send one).

        An unreadable ``inactiveFlag`` reads as inactive: a member we cannot vouch for must not sign in.
        """
        try:
            r = Reader(data, "member", tolerant=True)
            inactive = r.bool_("inactiveFlag", "inactiveFlag" in r.data)
            name = " ".join(p for p in (r.str_("firstName"), r.str_("lastName")) if p)
            email = (r.str_("officeEmail") or r.str_("primaryEmail")).lower()
            return cls(identifier=r.str_("identifier"), name=name[:200],
                       email=email if "@" in email[1:-1] and len(email) <= 320 else "", active=not inactive,
                       **r.record())
        except InvalidRecord:
            return None
