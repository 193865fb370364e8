"""Inline edits of an invoice's lines and header fields on its review page (parsed in the invoice's own currency
format, validated, checked for a ConnectWise change since the snapshot, written back with PATCH, then rescanned).

What may be edited is ``FIELDS``: a product's customer-facing description, quantity, unit price, billable option and
taxable flag; a time entry's notes, invoice hours and billable option; an expense's notes and billable option; the
invoice's top and bottom comments, customer PO and reference. Each is ConnectWise's own field on the record's own
endpoint (``procurement/products/{id}``, ``time/entries/{id}``, ``expense/entries/{id}``, ``finance/invoices/{id}``).

``save`` runs in this order, and stops at the first refusal with nothing sent or nothing changed:
1. the value is parsed and bounded (``EditRefused``, 422 beside the field; no ConnectWise request);
2. the record is read from ConnectWise (uncached) and its ``_info.lastUpdated`` compared with the snapshot's: moved
   means someone changed it there, so nothing is written and both values are shown (``Conflict``; "Apply mine"
   repeats the save accepting the lastUpdated seen then, "Keep theirs" rescans);
3. one PATCH replacing the one field (ConnectWise has no conditional write);
4. an "edited" timeline event and an audit row (field, before, after, who), committed;
5. the invoice is rescanned as the page's Refresh does (page deadlines), so totals, tax and flags follow.
A ConnectWise refusal (400 with its reason, 403, 409, a closed or exported invoice) is shown in plain words beside
the field; the PATCH replaces one field, so a refused one leaves nothing half-applied.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.connectwise import errors as cw_errors
from app.connectwise.records import Currency
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.invoices.document import format_money, format_number
from app.review import events, invoice_page
from app.review.events import EventActor
from app.review.rescan import rescan_invoice
from app.review.times import when
from app.services import Services

PATHS = {"product": "procurement/products", "time": "time/entries", "expense": "expense/entries",
         "invoice": "finance/invoices"}
KIND_WORDS = {"product": "product line", "time": "time entry", "expense": "expense", "invoice": "invoice"}
BILLABLE = (("Billable", "Billable"), ("DoNotBill", "Do not bill"), ("NoCharge", "No charge"))
TRUTH = (("true", "Taxable"), ("false", "Not taxable"))


@dataclass(frozen=True)
class Field:
    """One editable ConnectWise field: its label, how its value is typed, and its bounds."""

    name: str  # ConnectWise's field name, the PATCH path
    label: str
    type: str  # text | long_text | number | money | hours | choice | flag
    max_length: int = 0
    required: bool = False
    low: Decimal = Decimal(0)
    high: Decimal = Decimal(0)
    decimals: int = 2
    choices: tuple[tuple[str, str], ...] = ()
    limit_source: str = ""  # where the bound comes from, for the message


# Text limits: ConnectWise's spec maxLength where it gives one (customerDescription 6000, customerPO and reference
# 50); notes and comments have none in the spec, so ours (4000) keeps a paste of a whole document out.
FIELDS: dict[str, dict[str, Field]] = {
    "product": {
        "customerDescription": Field("customerDescription", "Description", "long_text", 6000, required=True),
        "quantity": Field("quantity", "Quantity", "number", low=Decimal(0), high=Decimal(1_000_000), decimals=4),
        "price": Field("price", "Unit price", "money", low=Decimal(-10_000_000), high=Decimal(10_000_000)),
        "billableOption": Field("billableOption", "Billing", "choice", choices=BILLABLE),
        "taxableFlag": Field("taxableFlag", "Tax", "flag", choices=TRUTH),
    },
    "time": {
        "notes": Field("notes", "Notes", "long_text", 4000),
        "invoiceHours": Field("invoiceHours", "Invoice hours", "hours", low=Decimal(0), high=Decimal(24)),
        "billableOption": Field("billableOption", "Billing", "choice", choices=BILLABLE),
    },
    "expense": {
        "notes": Field("notes", "Notes", "long_text", 4000),
        "billableOption": Field("billableOption", "Billing", "choice", choices=BILLABLE),
    },
    "invoice": {
        "topComment": Field("topComment", "Top comment", "long_text", 4000),
        "bottomComment": Field("bottomComment", "Bottom comment", "long_text", 4000),
        "customerPO": Field("customerPO", "Customer PO", "text", 50),
        "reference": Field("reference", "Reference", "text", 50),
    },
}


class EditError(Exception):
    """The edit cannot be made; ``status`` is the HTTP answer, ``str()`` the sentence shown beside the field."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class EditRefused(EditError):
    """The typed value is not acceptable (nothing was sent to ConnectWise)."""


class NotEditable(EditError):
    """No such record or field on this invoice's review (404), or the invoice is no longer open there."""


@dataclass(frozen=True)
class Conflict:
    """ConnectWise changed the record since the snapshot: nothing was written."""

    theirs: Any
    theirs_shown: str
    mine: Any
    mine_shown: str
    by: str
    at: str
    seen: str  # the lastUpdated read now: "Apply mine" writes only while it still holds


@dataclass
class Saved:
    """What became of a save: written (and rescanned, or why not), or a conflict, or nothing to do."""

    state: str  # written | unchanged | conflict
    conflict: Conflict | None = None
    rescan_problem: str = ""
    flags_cleared: int = 0
    flags_raised: int = 0
    notes: list[str] = field(default_factory=list)


# --- reading the snapshot ---------------------------------------------------------------------------------------

def _records(stored: invoice_page.Stored, kind: str) -> list[Mapping[str, Any]]:
    payloads = stored.payloads
    if payloads is None:
        return []
    if kind == "invoice":
        return [payloads.header]
    found = payloads.collections.get(PATHS[kind])
    return [r for r in found if isinstance(r, Mapping)] if isinstance(found, tuple | list) else []


def _record(stored: invoice_page.Stored, kind: str, record_id: int) -> Mapping[str, Any]:
    for r in _records(stored, kind):
        if r.get("id") == record_id:
            return r
    raise NotEditable("That line is not on this invoice as last read from ConnectWise. Reload the page.", 404)


def _info(record_: Mapping[str, Any]) -> Mapping[str, Any]:
    info = record_.get("_info")
    return info if isinstance(info, Mapping) else {}


def field_of(kind: str, name: str) -> Field:
    found = FIELDS.get(kind, {}).get(name)
    if found is None:
        raise NotEditable("That field cannot be edited here.", 404)
    return found


# --- showing and parsing values ---------------------------------------------------------------------------------

def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def shown(f: Field, value: Any, currency: Currency) -> str:
    """The value as the page shows it (numbers in the invoice's own format)."""
    if f.type in ("choice", "flag"):
        key = ("true" if value else "false") if f.type == "flag" else str(value or "")
        return next((label for k, label in f.choices if k == key), key)
    if f.type in ("number", "hours", "money"):
        number = _decimal(value)
        if number is None:
            return ""
        if f.type == "money":
            return format_money(number, currency)
        exponent = number.normalize().as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        return format_number(number, currency, min(max(places, 2 if f.type == "hours" else 0), f.decimals))
    return str(value or "")


def typed(f: Field, value: Any, currency: Currency) -> str:
    """The value as the input starts out (numbers without grouping or symbol, in the invoice's decimal mark)."""
    if f.type == "flag":
        return "true" if value else "false"
    if f.type in ("number", "hours", "money"):
        number = _decimal(value)
        if number is None:
            return ""
        text = format(number.normalize(), "f") if number != number.to_integral() else format(number.to_integral(), "f")
        return text.replace(".", currency.decimal_sep)
    return str(value or "")


def _example(currency: Currency) -> str:
    return format_number(Decimal("1234.50"), currency, 2)


def parse_number(raw: str, currency: Currency, f: Field) -> Decimal:
    """A number typed the way this invoice writes numbers ("1.234,50" on a Danish one); EditRefused otherwise."""
    text = raw.strip().replace("\u00a0", " ")
    for mark in (currency.symbol, currency.code):
        if mark and f.type == "money":
            text = text.replace(mark, "")
    text = text.strip()
    dec, group = currency.decimal_sep, currency.group_sep
    example = _example(currency)
    if not text:
        raise EditRefused(f"Type a number, e.g. {example}.")
    sign = ""
    if text[0] in "-−":
        sign, text = "-", text[1:].strip()
    allowed = set("0123456789") | {dec} | ({group} if group else set()) | ({" "} if group in (" ", "\u202f") else set())
    if not text or any(ch not in allowed for ch in text) or not text[0].isdigit() and not text.startswith(dec):
        raise EditRefused(f"“{raw.strip()}” is not a number as this invoice writes them (e.g. {example}).")
    if text.count(dec) > 1:
        raise EditRefused(f"“{raw.strip()}” has more than one decimal mark; this invoice writes {example}.")
    whole, _, fraction = text.partition(dec)
    if group and group in whole or (group in (" ", "\u202f") and " " in whole):
        groups = re.split(r"[ \u202f]" if group in (" ", "\u202f") else re.escape(group), whole)
        if not groups[0] or len(groups[0]) > 3 or any(len(g) != 3 for g in groups[1:]):
            raise EditRefused(f"“{raw.strip()}” is ambiguous: this invoice writes {example} "
                              f"(“{dec}” for decimals, “{group}” between thousands).")
        whole = "".join(groups)
    if fraction and not fraction.isdigit():
        raise EditRefused(f"“{raw.strip()}” is not a number as this invoice writes them (e.g. {example}).")
    if len(fraction) > f.decimals:
        raise EditRefused(f"{f.label} takes at most {f.decimals} decimal{'s' if f.decimals != 1 else ''} here.")
    number = Decimal(f"{sign}{whole or '0'}.{fraction or '0'}")
    if not f.low <= number <= f.high:
        low, high = format_number(f.low, currency, 0), format_number(f.high, currency, 0)
        per = " per time entry" if f.type == "hours" else ""
        raise EditRefused(f"{f.label} must be between {low} and {high}{per}.")
    return number


def parse(f: Field, raw: str, currency: Currency) -> Any:
    """The JSON value ConnectWise is sent for ``raw``; EditRefused with the sentence shown beside the field."""
    if f.type in ("number", "hours", "money"):
        number = parse_number(raw, currency, f)
        return int(number) if number == number.to_integral() and f.type != "money" else float(number)
    if f.type == "choice":
        if raw not in {k for k, _ in f.choices}:
            raise EditRefused(f"Pick one of: {', '.join(label for _, label in f.choices)}.")
        return raw
    if f.type == "flag":
        if raw not in ("true", "false"):
            raise EditRefused("Pick Taxable or Not taxable.")
        return raw == "true"
    text = raw.replace("\r\n", "\n")
    if f.type == "text":
        text = text.strip()
    if f.required and not text.strip():
        raise EditRefused(f"{f.label} cannot be empty (ConnectWise requires it).")
    if len(text) > f.max_length:
        raise EditRefused(f"{f.label} takes at most {f.max_length:,} characters ({len(text):,} typed).")
    return text


def _same(f: Field, a: Any, b: Any) -> bool:
    if f.type in ("number", "hours", "money"):
        return _decimal(a) == _decimal(b)
    if f.type == "flag":
        return bool(a) == bool(b)
    return (a or "") == (b or "")


# --- the panel --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    kind: str
    record_id: int
    field: Field
    value: Any
    shown: str
    typed: str


def cell(stored: invoice_page.Stored, kind: str, record_id: int, name: str) -> Cell:
    """One editable value of the invoice as the snapshot holds it."""
    f = field_of(kind, name)
    r = _record(stored, kind, record_id)
    currency = stored.document.currency if stored.document is not None else None
    if currency is None:
        raise NotEditable("The stored copy of this invoice cannot be shown; Refresh it first.", 409)
    value = r.get(name)
    if f.type in ("text", "long_text"):
        value = value or ""  # ConnectWise omits an empty text field
    return Cell(kind, record_id, f, value, shown(f, value, currency), typed(f, value, currency))


def _line_title(kind: str, r: Mapping[str, Any]) -> str:
    if kind == "product":
        item = r.get("catalogItem")
        return str(item.get("identifier") or "") if isinstance(item, Mapping) else ""
    if kind == "time":
        member, start = r.get("member"), str(r.get("timeStart") or "")[:10]
        name = member.get("name") if isinstance(member, Mapping) else ""
        return " · ".join(x for x in (str(name or ""), start) if x)
    if kind == "expense":
        kind_ref, day = r.get("type"), str(r.get("date") or "")[:10]
        name = kind_ref.get("name") if isinstance(kind_ref, Mapping) else ""
        return " · ".join(x for x in (str(name or ""), day) if x)
    return ""


def panel(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any) -> dict[str, Any]:
    """What ``review/_lines.html`` shows for this invoice to this user (its context variable: ``lines_panel``)."""
    stored = invoice_page.load(session, services.keyring, tenant_id, invoice_id)
    return panel_of(stored, user)


def panel_of(stored: invoice_page.Stored | None, user: Any, message: str = "") -> dict[str, Any]:
    """The panel's context from a loaded review (the template asks ``can('review_edit')`` for the inputs)."""
    empty: dict[str, Any] = {"invoice_id": stored.row.invoice_id if stored else 0, "sections": [], "totals": None,
                             "message": message}
    if stored is None or not stored.is_open or stored.document is None:
        return empty
    sections = []
    for kind, title in (("invoice", "Invoice details"), ("product", "Products"), ("time", "Time"),
                        ("expense", "Expenses")):
        rows = []
        for r in _records(stored, kind):
            rid = r.get("id")
            if not isinstance(rid, int) or isinstance(rid, bool):
                continue
            rows.append({"kind": kind, "id": rid, "title": _line_title(kind, r),
                         "cells": [cell(stored, kind, rid, name) for name in FIELDS[kind]]})
        if rows:
            sections.append({"kind": kind, "title": title, "rows": rows})
    doc = stored.document
    totals = {"subtotal": format_money(doc.totals.subtotal, doc.currency),
              "tax": format_money(doc.totals.tax, doc.currency), "total": format_money(doc.totals.total, doc.currency),
              "balance": format_money(doc.totals.balance, doc.currency)}
    return {**empty, "sections": sections, "totals": totals}


# --- saving -----------------------------------------------------------------------------------------------------

def _refusal(exc: Exception, kind: str) -> EditError:
    """A ConnectWise failure in plain words (nothing was changed: the PATCH replaces one field or nothing)."""
    word = KIND_WORDS[kind]
    if isinstance(exc, cw_errors.PermissionMissing):
        return EditError(f"ConnectWise refused: the API member's security role may not change this {word} "
                         "(give it edit rights there). Nothing was changed.", 403)
    if isinstance(exc, cw_errors.NotFound):
        return EditError(f"This {word} no longer exists in ConnectWise. Nothing was changed.", 404)
    if isinstance(exc, cw_errors.BadRequest) and exc.status == 409:
        return EditError(f"ConnectWise refused the change: the {word} is in use or was being changed there (409). "
                         "Nothing was changed. Try again in a moment.", 409)
    if isinstance(exc, cw_errors.BadRequest):
        text = str(exc)
        closed = "closed to changes" in text or "InvoiceClosed" in text
        reason = text.split(": ", 1)[-1] if ": " in text else text
        if closed:
            return EditError(f"The invoice is closed in ConnectWise, so it refuses changes: {reason} "
                             "Nothing was changed.", 409)
        return EditError(f"ConnectWise refused the change: {reason} Nothing was changed.", 400)
    if isinstance(exc, cw_errors.Busy):
        return EditError(f"{exc} Nothing was changed.", 503)
    if isinstance(exc, cw_errors.WriteUncertain):
        return EditError("ConnectWise did not confirm the change (it may or may not have been applied). Refresh the "
                         "invoice to see what it has now.", 502)
    if isinstance(exc, NotConnected):
        return EditError("ConnectWise is not connected for this workspace. Nothing was changed.", 409)
    return EditError(f"ConnectWise could not be reached: {exc}. Nothing was changed.", 502)


def _by_at(info: Mapping[str, Any], tz: dt.tzinfo) -> tuple[str, str]:
    by = str(info.get("updatedBy") or "someone")
    raw = str(info.get("lastUpdated") or "")
    try:
        at = when(dt.datetime.fromisoformat(raw.replace("Z", "+00:00")), tz)
    except ValueError:
        at = raw
    return by, at


def save(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, kind: str, record_id: int,
         name: str, raw: str, user: Any, actor: Actor, origin: Origin, tz: dt.tzinfo, *,
         accept_seen: str = "") -> Saved:
    """Parse, check, write back and rescan one field (see the module docstring); raises EditError on refusal.

    ``accept_seen``: "Apply mine" after a conflict: the record's lastUpdated as the conflict showed it; the write goes
    ahead while ConnectWise still has that one (a newer change is a new conflict)."""
    stored = invoice_page.load(session, services.keyring, tenant_id, invoice_id)
    if stored is None:
        raise NotEditable("This invoice is not in review.", 404)
    if not stored.is_open or stored.document is None:
        raise NotEditable("This invoice is no longer open in ConnectWise, so it cannot be edited here.", 409)
    current = cell(stored, kind, record_id, name)
    f, currency = current.field, stored.document.currency
    value = parse(f, raw, currency)  # EditRefused before any request
    if _same(f, value, current.value) and not accept_seen:
        return Saved("unchanged")
    snapshot_stamp = str(_info(_record(stored, kind, record_id)).get("lastUpdated") or "")
    path = f"{PATHS[kind]}/{record_id}"
    try:
        client = tenant_client(session, services.keyring, services.config, services.redis,
                               **invoice_page.page_client_options(services))
    except (NotConnected, cw_errors.ConnectWiseError) as exc:
        raise _refusal(exc, kind) from exc
    with client:
        try:
            now = client.get(path, {"fields": f"id,{name},_info/lastUpdated,_info/updatedBy"}, cache=False)
            now = now if isinstance(now, dict) else {}
            info = _info(now)
            stamp = str(info.get("lastUpdated") or "")
            if stamp != snapshot_stamp and stamp != accept_seen:
                by, at = _by_at(info, tz)
                theirs = now.get(name)
                return Saved("conflict", Conflict(theirs, shown(f, theirs, currency), value,
                                                  shown(f, value, currency), by, at, stamp))
            # The remaining window: a change made in ConnectWise between the read above and this PATCH is
            # overwritten (ConnectWise has no conditional write). It is one request long, sent straight after.
            client.patch(path, [{"op": "replace", "path": name, "value": value}], idempotent=True)
        except cw_errors.ConnectWiseError as exc:
            raise _refusal(exc, kind) from exc
    before, after = current.shown, shown(f, value, currency)
    what = f"{f.label.lower()} of {KIND_WORDS[kind]} {record_id}" if kind != "invoice" else f.label.lower()
    events.add(session, services.keyring, tenant_id, invoice_id, "edited", EventActor.for_user(user),
               detail={"what": what, "before": before, "after": after, "kind": kind, "record_id": record_id,
                       "field": name})
    record(session, tenant_id, actor, "review.line_edited", target_type=KIND_WORDS[kind].replace(" ", "_"),
           target_id=record_id, before={"invoice_id": invoice_id, "field": name, "value": current.value},
           after={"invoice_id": invoice_id, "field": name, "value": value, "forced": bool(accept_seen)},
           origin=origin)
    # The rescan commits in its own transaction: ours (the event and the audit row) must not hold the tenant's locks.
    session.commit()
    result = rescan_invoice(services, str(tenant_id), int(invoice_id),
                                         client_options=invoice_page.page_client_options(services))
    saved = Saved("written", flags_cleared=result.flags_cleared, flags_raised=result.flags_raised)
    if result.outcome != "ok":
        saved.rescan_problem = (f"Saved in ConnectWise, but the invoice could not be read again ({result.reason}); "
                                "the totals here are the old ones until it is refreshed.")
    return saved


def keep_theirs(services: Services, tenant_id: uuid.UUID, invoice_id: int) -> str:
    """"Keep theirs": nothing of ours is written; the invoice is read again so the page shows ConnectWise's value.
    Returns a problem sentence, or ""."""
    result = rescan_invoice(services, str(tenant_id), int(invoice_id),
                                         client_options=invoice_page.page_client_options(services))
    return "" if result.outcome == "ok" else f"The invoice could not be read again: {result.reason}"
