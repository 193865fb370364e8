"""Who an invoice goes to: its bill-to contact in ConnectWise, and checking addresses a person typed.

ConnectWise's invoice has no contact reference, only ``attention`` (the billing contact's name, filled in when the
invoice is made) and ``billToCompany``. So the invoice's billing contact is the bill-to company's active contact
of that name; else the company's ``billingContact`` (its default billing contact); else a contact flagged
``defaultBillingFlag``. A contact's address is its default ``Email`` communication item. When no contact has one,
the company's ``invoiceToEmailAddress`` (what ConnectWise's own invoice emailing uses) is taken; CC comes from
``invoiceCCEmailAddress``. Nothing found: the invoice is skipped with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.connectwise.client import Client

MAX_RECIPIENTS = 20
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_SPLIT = re.compile(r"[,;\s]+")
INVOICE_FIELDS = "id,invoiceNumber,attention,company/id,billToCompany/id,billToCompany/name"
COMPANY_FIELDS = "id,name,billingContact,defaultContact,invoiceToEmailAddress,invoiceCCEmailAddress"
CONTACT_FIELDS = "id,firstName,lastName,defaultBillingFlag,inactiveFlag,communicationItems"


class AddressError(ValueError):
    """A typed address list that cannot be used; the message names the bad address."""


@dataclass(frozen=True)
class BillTo:
    """Where the invoice goes by default. ``to`` empty: nobody found, ``reason`` says why."""

    to: tuple[str, ...]
    cc: tuple[str, ...]
    contact_name: str
    source: str  # invoice contact | company billing contact | billing contact | company invoice address | none
    reason: str = ""


def parse_addresses(raw: str, *, required: bool, label: str) -> tuple[str, ...]:
    """Addresses separated by commas, semicolons or spaces, each checked; duplicates dropped (case-insensitive)."""
    items = [a.strip() for a in _SPLIT.split(raw or "") if a.strip()]
    if not items and required:
        raise AddressError(f"Enter at least one address in {label}.")
    seen: dict[str, str] = {}
    for item in items:
        if len(item) > 254 or not _ADDRESS.match(item):
            raise AddressError(f"“{item[:80]}” is not an email address.")
        seen.setdefault(item.lower(), item)
    if len(seen) > MAX_RECIPIENTS:
        raise AddressError(f"At most {MAX_RECIPIENTS} addresses in {label}.")
    return tuple(seen.values())


def _clean(raw: Any) -> tuple[str, ...]:
    """Addresses from a ConnectWise field, keeping only those that look like addresses."""
    if not isinstance(raw, str):
        return ()
    return tuple(a for a in (x.strip() for x in _SPLIT.split(raw)) if a and _ADDRESS.match(a))


def _email_of(contact: dict) -> str:
    items = contact.get("communicationItems")
    emails = [i for i in items if isinstance(i, dict) and i.get("communicationType") == "Email"
              and isinstance(i.get("value"), str) and _ADDRESS.match(i["value"].strip())] if isinstance(items, list) \
        else []
    emails.sort(key=lambda i: not i.get("defaultFlag"))
    return emails[0]["value"].strip() if emails else ""


def _name_of(contact: dict) -> str:
    return " ".join(str(contact.get(k) or "").strip() for k in ("firstName", "lastName")).strip()


def _ref_id(value: Any) -> int | None:
    rid = value.get("id") if isinstance(value, dict) else None
    return rid if isinstance(rid, int) and not isinstance(rid, bool) else None


def bill_to(client: Client, invoice_id: int) -> BillTo:
    """The invoice's default recipients, read from ConnectWise (three reads). Raises ConnectWiseError."""
    invoice = client.get(f"finance/invoices/{int(invoice_id)}", {"fields": INVOICE_FIELDS})
    invoice = invoice if isinstance(invoice, dict) else {}
    company_id = _ref_id(invoice.get("billToCompany")) or _ref_id(invoice.get("company"))
    if company_id is None:
        return BillTo((), (), "", "none", "The invoice names no bill-to company in ConnectWise.")
    company = client.get(f"company/companies/{company_id}", {"fields": COMPANY_FIELDS})
    company = company if isinstance(company, dict) else {}
    contacts = client.get_all("company/contacts", conditions=f"company/id={company_id} AND inactiveFlag=false",
                              fields=CONTACT_FIELDS.split(","))
    people = [c for c in contacts if isinstance(c, dict)]
    cc = _clean(company.get("invoiceCCEmailAddress"))
    attention = str(invoice.get("attention") or "").strip().casefold()
    billing_id = _ref_id(company.get("billingContact"))
    candidates = [
        ("invoice contact", [c for c in people if attention and _name_of(c).casefold() == attention]),
        ("company billing contact", [c for c in people if billing_id is not None and c.get("id") == billing_id]),
        ("billing contact", [c for c in people if c.get("defaultBillingFlag")]),
    ]
    named = ""
    for source, found in candidates:
        for contact in found:
            named = named or _name_of(contact)
            email = _email_of(contact)
            if email:
                return BillTo((email,), tuple(a for a in cc if a.lower() != email.lower()), _name_of(contact), source)
    fallback = _clean(company.get("invoiceToEmailAddress"))
    if fallback:
        return BillTo(fallback[:1], tuple(a for a in cc if a.lower() != fallback[0].lower()), named,
                      "company invoice address")
    company_name = str(company.get("name") or "the company")
    if named:
        reason = f"{named}, the billing contact of {company_name} in ConnectWise, has no email address."
    else:
        reason = f"{company_name} has no billing contact with an email address in ConnectWise."
    return BillTo((), cc, named, "none", reason)
