"""ConnectWise's audit trail: ``GET /system/audittrail?type=Invoice&id=N`` (and ``/count``), the seeded history of
every invoice and the entries the simulator's own changes append.

Shape: ``AuditTrailEntry`` of the official spec (``text``, ``enteredDate``, ``enteredBy``, ``auditType``,
``auditSubType``, ``auditSource``; no id). What ConnectWise puts in those strings for invoices is not documented;
the values here are a guess in ConnectWise's style: ``auditType`` is the trail's type ("Invoice", "ProductItem",
"Time", "Expense"), ``auditSubType`` names what changed ("Status", "Customer PO", "Product", ...), ``auditSource``
is "API" for a change through the REST API and "Manage" for the seeded history (done in the PSA's own screens).
Entries are served newest first [guess: the PSA's audit screen lists them so], in navigable pages (the audit-trail
endpoints do not support forward-only paging, API-NOTES §5: the header is ignored); ``conditions``, ``orderBy``
and ``fields`` work as on every list; ``deviceIdentifier``, ``xrefRecId``, ``childConditions`` and
``customFieldConditions`` are accepted and ignored (they scope other types' trails).

A PATCH or DELETE of an invoice appends to the invoice's trail; one of a product, time entry or expense on an
invoice appends to that record's own trail and to its invoice's. (The simulator POSTs only callbacks, which have no
trail.) The trail lives in the ``Dataset``, so the simulator's
reset (which rebuilds the data set) restores the seeded history.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from werkzeug.wrappers import Request

from cwsim import errors, query
from cwsim.conditions import ConditionError, compile_conditions
from cwsim.schemas import has_path
from cwsim.serialize import iso
from cwsim.store import Dataset

SCHEMA = "AuditTrailEntry"
# The spec's enum for ``type``.
TYPES = (
    "None", "Ticket", "Contact", "Company", "Opportunity", "Time", "Activity", "ProductCatalog", "ProjectTicket",
    "Purchasing", "Configuration", "Schedule", "Agreement", "AgreementAddition", "Project", "Invoice",
    "PurchaseOrder", "Expense", "ProductItem", "Survey", "Member", "PurchaseOrderLineItem", "Site",
)
# Simulator table -> the trail type its records are audited under, and how a line names itself on its invoice's.
TRAIL_TYPES = {"invoices": "Invoice", "products": "ProductItem", "timeEntries": "Time", "expenseEntries": "Expense"}
_LINE_NAMES = {"products": "Product", "timeEntries": "Time entry", "expenseEntries": "Expense"}
LABELS = {
    "status": "Status", "customerPO": "Customer PO", "reference": "Reference", "topComment": "Top comment",
    "bottomComment": "Bottom comment", "internalNotes": "Internal notes", "attention": "Attention",
    "description": "Description", "customerDescription": "Customer description", "quantity": "Quantity",
    "price": "Price", "cost": "Cost", "billableOption": "Billable option", "taxableFlag": "Taxable",
    "notes": "Notes", "invoiceHours": "Invoice hours", "hourlyRate": "Hourly rate",
}
# Long free text: the trail says it changed, not from what to what.
_PROSE = {"topComment", "bottomComment", "internalNotes", "description", "customerDescription", "notes"}
_MONEY = {"price", "cost", "hourlyRate"}
SEED_SOURCE, API_SOURCE = "Manage", "API"


def entry(text: str, entered: datetime | str, entered_by: str, audit_type: str, sub_type: str,
          source: str = API_SOURCE) -> dict[str, str]:
    """One ``AuditTrailEntry``."""
    return {"text": text, "enteredDate": entered if isinstance(entered, str) else iso(entered),
            "enteredBy": entered_by, "auditType": audit_type, "auditSubType": sub_type, "auditSource": source}


def append(data: Dataset, audit_type: str, record_id: int, item: dict[str, str]) -> None:
    data.audit_trail.setdefault((audit_type, int(record_id)), []).append(item)


def seed_history(data: Dataset) -> None:
    """A little history for every seeded invoice: who created it, its customer PO, and its one status change."""
    statuses = {s["id"]: s["name"] for s in data["billingStatuses"].iter()}
    default = next((s["name"] for s in data["billingStatuses"].iter() if s["defaultFlag"]), "New")
    for invoice in data["invoices"].iter():
        info, number = invoice["_info"], invoice["invoiceNumber"]
        created, by = info.get("dateEntered") or info["lastUpdated"], info.get("enteredBy") or info["updatedBy"]
        append(data, "Invoice", invoice["id"],
               entry(f"Invoice {number} created", created, by, "Invoice", "Invoice", SEED_SOURCE))
        if invoice.get("customerPO"):
            append(data, "Invoice", invoice["id"],
                   entry(f'Customer PO changed from "" to "{invoice["customerPO"]}"', _plus_minutes(created, 5), by,
                         "Invoice", "Customer PO", SEED_SOURCE))
        status = statuses.get(invoice["status"]["id"], invoice["status"].get("name", ""))
        if status != default:
            # A colleague moved it on (seeded members: lmartin bills, jmorales manages service).
            mover = ("lmartin", "jmorales")[invoice["id"] % 2]
            append(data, "Invoice", invoice["id"],
                   entry(f"Status changed from {default} to {status}", info["lastUpdated"], mover, "Invoice",
                         "Status", SEED_SOURCE))


def _plus_minutes(stamp: str, minutes: int) -> str:
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return iso(moment.replace(minute=min(59, moment.minute + minutes)))


def record_patch(data: Dataset, table: str, before: dict, after: dict, entered_by: str) -> None:
    """Append what a PATCH changed to the record's trail (and, for a line on an invoice, to its invoice's)."""
    audit_type = TRAIL_TYPES.get(table)
    if audit_type is None:
        return
    now = datetime.now(timezone.utc).replace(microsecond=0)
    changed = [f for f in LABELS if f in after and _plain(before.get(f)) != _plain(after.get(f))]
    for field in changed:
        sentence = _sentence(field, before.get(field), after.get(field))
        sub_type = LABELS[field]
        append(data, audit_type, after["id"], entry(sentence, now, entered_by, audit_type, sub_type))
        invoice_id = (after.get("invoice") or {}).get("id") if table != "invoices" else None
        if invoice_id is not None:
            line = f"{_LINE_NAMES[table]} {after['id']}"
            append(data, "Invoice", invoice_id,
                   entry(f"{line}: {sentence}", now, entered_by, "Invoice", _LINE_NAMES[table]))


def record_delete(data: Dataset, table: str, record: dict, entered_by: str) -> None:
    """Append a DELETE to the record's trail (and, for a line on an invoice, to its invoice's)."""
    audit_type = TRAIL_TYPES.get(table)
    if audit_type is None:
        return
    now = datetime.now(timezone.utc).replace(microsecond=0)
    if table == "invoices":
        append(data, "Invoice", record["id"],
               entry(f"Invoice {record.get('invoiceNumber', record['id'])} deleted", now, entered_by, "Invoice",
                     "Invoice"))
        return
    line = f"{_LINE_NAMES[table]} {record['id']}"
    append(data, audit_type, record["id"], entry(f"{line} deleted", now, entered_by, audit_type, _LINE_NAMES[table]))
    invoice_id = (record.get("invoice") or {}).get("id")
    if invoice_id is not None:
        append(data, "Invoice", invoice_id,
               entry(f"{line} deleted", now, entered_by, "Invoice", _LINE_NAMES[table]))


def _plain(value: Any) -> Any:
    """What a field's value is for comparing and saying: a reference by its name, numbers as numbers."""
    if isinstance(value, dict):
        return value.get("name", value.get("identifier", value.get("id")))
    return value


def _say(field: str, value: Any) -> str:
    value = _plain(value)
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, (int, float)):
        return f"{value:.2f}" if field in _MONEY else f"{value:g}"
    return f'"{value}"'


def _sentence(field: str, old: Any, new: Any) -> str:
    label = LABELS[field]
    if field in _PROSE:
        return f"{label} changed"
    if field == "status":
        return f"Status changed from {_plain(old)} to {_plain(new)}"
    return f"{label} changed from {_say(field, old)} to {_say(field, new)}"


# --- the endpoint ----------------------------------------------------------------------------------------


def serve(data: Dataset, lock: Any, request: Request, tail: list[str]) -> tuple[Any, dict[str, str]]:
    """``GET /system/audittrail`` (a page of entries) or ``/system/audittrail/count``: the body and its headers."""
    if request.method != "GET":
        raise errors.method_not_allowed(request.method)
    if tail and [t.lower() for t in tail] != ["count"]:
        raise errors.endpoint_missing()
    args = request.args
    audit_type = _audit_type(args.get("type"))
    record_id = _record_id(args.get("id"))
    with lock:
        found = list(reversed(data.audit_trail.get((audit_type, record_id), ())))
    conditions = args.get("conditions")
    if conditions:
        try:
            _node, predicate = compile_conditions(conditions, lambda p: has_path(SCHEMA, p))
        except ConditionError as exc:
            raise errors.bad_condition(str(exc)) from None
        found = [e for e in found if predicate(e)]
    if tail:
        return {"count": len(found)}, {}
    try:
        page, size = query.page_params(args)
        if args.get("orderBy"):
            found = query.sort_records(found, query.parse_order_by(args["orderBy"]))
        fields = query.parse_fields(args["fields"]) if args.get("fields") else None
    except query.QueryError as exc:
        raise errors.bad_request(str(exc)) from None
    chunk = found[(page - 1) * size: page * size]
    if fields:
        chunk = [query.project(e, fields) for e in chunk]
    url = request.host_url.rstrip("/") + re.sub("/{2,}", "/", request.path)
    link = query.link_header(url, request.query_string.decode("latin-1"), page, size, len(found))
    return chunk, ({"Link": link} if link else {})


def _audit_type(raw: str | None) -> str:
    if not raw:
        raise errors.bad_request("The type parameter is required.")
    for name in TYPES:
        if name.lower() == raw.lower():
            return name
    raise errors.bad_request(f"The value '{raw}' is not valid for type.")


def _record_id(raw: str | None) -> int:
    if raw is None or raw == "":
        raise errors.bad_request("The id parameter is required.")
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f"The value '{raw}' is not valid for id.") from None
