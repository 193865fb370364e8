"""The served collections: URL path → table and schema, plus list/get/count and PATCH semantics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cwsim import errors, totals
from cwsim.conditions import ConditionError, compile_conditions, id_constraint
from cwsim.schemas import has_path
from cwsim.serialize import iso, ref
from cwsim.store import Dataset

API_MEMBER = "bettersim_api"


@dataclass(frozen=True)
class Resource:
    path: tuple[str, ...]  # "{parent}" marks the parent id segment
    table: str
    schema: str
    label: str  # in "Invoice 5 not found"
    name: str  # in "invoice object is invalid"
    patchable: frozenset[str] = frozenset()
    parent_table: str | None = None
    parent_label: str = ""


def _r(
    path: str,
    table: str,
    schema: str,
    label: str,
    name: str,
    patchable: str = "",
    parent: tuple[str, str] | None = None,
) -> Resource:
    return Resource(
        tuple(path.split("/")),
        table,
        schema,
        label,
        name,
        frozenset(patchable.split()),
        parent[0] if parent else None,
        parent[1] if parent else "",
    )


RESOURCES = [
    _r(
        "finance/invoices",
        "invoices",
        "Invoice",
        "Invoice",
        "invoice",
        "status customerPO reference topComment bottomComment internalNotes attention",
    ),
    _r(
        "finance/invoices/{parent}/payments",
        "payments",
        "InvoicePayment",
        "InvoicePayment",
        "invoicePayment",
        parent=("invoices", "Invoice"),
    ),
    _r(
        "finance/invoices/{parent}/routings",
        "routings",
        "InvoiceRouting",
        "InvoiceRouting",
        "invoiceRouting",
        "reviewedFlag dateReviewedUTC",
        parent=("invoices", "Invoice"),
    ),
    _r(
        "procurement/products",
        "products",
        "ProductItem",
        "ProductItem",
        "productItem",
        "description customerDescription internalNotes quantity price cost billableOption taxableFlag",
    ),
    _r(
        "time/entries",
        "timeEntries",
        "TimeEntry",
        "TimeEntry",
        "timeEntry",
        "notes internalNotes billableOption invoiceHours hourlyRate",
    ),
    _r(
        "expense/entries",
        "expenseEntries",
        "ExpenseEntry",
        "ExpenseEntry",
        "expenseEntry",
        "notes billableOption",
    ),
    _r("time/workTypes", "workTypes", "WorkType", "WorkType", "workType"),
    _r("company/companies", "companies", "Company", "Company", "company"),
    _r("company/contacts", "contacts", "Contact", "Contact", "contact"),
    _r("system/members", "members", "Member", "Member", "member"),
    _r("finance/billingSetups", "billingSetups", "BillingSetup", "BillingSetup", "billingSetup"),
    _r(
        "finance/billingSetups/{parent}/routings",
        "billingSetupRoutings",
        "BillingSetupRouting",
        "BillingSetupRouting",
        "billingSetupRouting",
        parent=("billingSetups", "BillingSetup"),
    ),
    _r("finance/billingStatuses", "billingStatuses", "BillingStatus", "BillingStatus", "billingStatus"),
    _r("finance/taxCodes", "taxCodes", "TaxCode", "TaxCode", "taxCode"),
    _r(
        "finance/taxCodes/{parent}/taxCodeLevels",
        "taxCodeLevels",
        "TaxCodeLevel",
        "TaxCodeLevel",
        "taxCodeLevel",
        parent=("taxCodes", "TaxCode"),
    ),
    _r("finance/agreements", "agreements", "Agreement", "Agreement", "agreement"),
    _r(
        "finance/agreements/{parent}/additions",
        "additions",
        "Addition",
        "Addition",
        "addition",
        parent=("agreements", "Agreement"),
    ),
    _r("service/tickets", "tickets", "Ticket", "Ticket", "ticket", "summary"),
    _r(
        "service/tickets/{parent}/notes",
        "ticketNotes",
        "ServiceNote",
        "ServiceNote",
        "serviceNote",
        parent=("tickets", "Ticket"),
    ),
    _r("project/projects", "projects", "Project", "Project", "project"),
    _r(
        "system/callbacks",
        "callbacks",
        "CallbackEntry",
        "CallbackEntry",
        "callbackEntry",
        "description url inactiveFlag",
    ),
]


def match(segments: list[str]) -> tuple[Resource, int | None, list[str]] | None:
    """Longest resource pattern matching the start of ``segments``; returns (resource, parent id, rest)."""
    best = None
    for resource in RESOURCES:
        n = len(resource.path)
        if len(segments) < n:
            continue
        parent_id = None
        for pattern, seg in zip(resource.path, segments, strict=False):
            if pattern == "{parent}":
                if not seg.isdigit():
                    break
                parent_id = int(seg)
            elif pattern.lower() != seg.lower():
                break
        else:
            if best is None or n > len(best[0].path):
                best = (resource, parent_id, segments[n:])
    return best


def check_parent(data: Dataset, resource: Resource, parent_id: int | None) -> None:
    if resource.parent_table and data[resource.parent_table].get(parent_id) is None:
        raise errors.not_found(resource.parent_label, parent_id)


def select(
    data: Dataset,
    resource: Resource,
    parent_id: int | None,
    conditions: str | None,
    extra: Callable[[dict], bool] | None = None,
) -> list[dict]:
    """Records of ``resource`` matching ``conditions`` (unrendered), in id order."""
    table = data[resource.table]
    predicate, invoice_ids = None, None
    if conditions:
        try:
            node, predicate = compile_conditions(conditions, lambda p: has_path(resource.schema, p))
        except ConditionError as exc:
            raise errors.bad_condition(str(exc)) from None
        invoice_ids = id_constraint(node, ("invoice", "id"))
    out = []
    for record in table.iter(parent_id, invoice_ids):
        if predicate is not None and not predicate(record):
            continue
        if extra is not None and not extra(record):
            continue
        out.append(record)
    return out


def get_one(data: Dataset, resource: Resource, parent_id: int | None, record_id: int) -> dict:
    record = data[resource.table].get(record_id, parent_id)
    if record is None:
        raise errors.not_found(resource.label, record_id)
    return record


# --- PATCH ---------------------------------------------------------------------------------------


def _invoice_decimals(data: Dataset, record: dict) -> int:
    invoice = data["invoices"].get(record.get("invoice", {}).get("id"))
    return invoice["currency"]["numberOfDecimals"] if invoice else 2


def _number(resource: Resource, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise errors.invalid_object(resource.name, field, f"The value for {field} must be a number.")
    return float(value)


def _derive(data: Dataset, resource: Resource, record: dict, changes: dict) -> None:
    """Recompute the amounts ConnectWise derives when their inputs change."""
    merged = {**record, **changes}
    if resource.table == "products" and {"quantity", "price", "cost"} & changes.keys():
        dec = _invoice_decimals(data, record)
        changes["extPrice"] = round(merged["quantity"] * merged["price"], dec)
        changes["extCost"] = round(merged["quantity"] * merged["cost"], dec)
        changes["margin"] = round(changes["extPrice"] - changes["extCost"], 2)
    if resource.table == "timeEntries" and {"invoiceHours", "hourlyRate", "billableOption"} & changes.keys():
        dec = _invoice_decimals(data, record)
        billable = merged["billableOption"] == "Billable"
        hours = merged.get("invoiceHours") or 0.0
        if "billableOption" in changes and "invoiceHours" not in changes:
            hours = merged.get("actualHours", 0.0) if billable else 0.0
        changes["invoiceHours"] = changes["hoursBilled"] = hours
        # Hours an agreement covers are not charged again (the seed's agreement time).
        charged = max(hours - (merged.get("agreementHours") or 0.0), 0.0)
        changes["extendedInvoiceAmount"] = (
            round(charged * merged.get("hourlyRate", 0.0), dec) if billable else 0.0
        )
    if resource.table == "expenseEntries" and "billableOption" in changes:
        billable = merged["billableOption"] == "Billable"
        changes["invoiceAmount"] = merged.get("billAmount", merged.get("amount", 0.0)) if billable else 0.0


def apply_patch(data: Dataset, resource: Resource, parent_id: int | None, record_id: int, body: Any) -> dict:
    record = get_one(data, resource, parent_id, record_id)
    if resource.table == "invoices" and record.get("glBatch"):
        # Exported to accounting: ConnectWise keeps such an invoice closed to edits, its status included, until it
        # is unbatched (the schema's unbatchedBatch). The wording is ours; the refusal's shape is ConnectWise's.
        batch = record["glBatch"].get("name") or record["glBatch"].get("id")
        raise errors.invalid_object(resource.name, "status", f"Invoice {record.get('invoiceNumber', record_id)} "
                                    f"was exported to accounting in batch {batch} and is closed to changes.",
                                    code="InvoiceClosed")
    invoice_id = _invoice_of(resource, record)
    invoice = data["invoices"].get(invoice_id) if invoice_id is not None and resource.table != "invoices" else None
    if invoice is not None and invoice.get("glBatch"):
        # A line billed on an exported invoice is as closed to edits as the invoice itself (wording ours).
        batch = invoice["glBatch"].get("name") or invoice["glBatch"].get("id")
        raise errors.invalid_object(resource.name, "invoice", f"This line is on invoice "
                                    f"{invoice.get('invoiceNumber', invoice_id)}, which was exported to accounting in "
                                    f"batch {batch} and is closed to changes.", code="InvoiceClosed")
    if not isinstance(body, list) or not body:
        raise errors.bad_request("The request body must be a JSON array of patch operations.")
    changes: dict[str, Any] = {}
    for op in body:
        if not isinstance(op, dict) or "path" not in op or not isinstance(op.get("path"), str):
            raise errors.bad_request("Each patch operation needs 'op', 'path' and 'value'.")
        kind = str(op.get("op", "")).lower()
        field = op["path"].lstrip("/")
        if kind not in ("add", "replace", "remove"):
            raise errors.invalid_object(resource.name, field, f"Operation '{op.get('op')}' is not supported.")
        if field not in resource.patchable:
            raise errors.invalid_object(resource.name, field, f"The field {field} cannot be updated.")
        value = None if kind == "remove" else op.get("value")
        changes[field] = _coerce_patch_value(data, resource, field, value)
    _derive(data, resource, record, changes)
    info = dict(record.get("_info", {}))
    info["lastUpdated"] = iso(datetime.now(timezone.utc).replace(microsecond=0))
    info["updatedBy"] = API_MEMBER
    changes["_info"] = info
    data[resource.table].set_fields(record_id, changes)
    if invoice_id is not None and resource.table in LINES:
        # ConnectWise keeps the header's totals, tax and balance in step with its lines, and a line's change
        # updates its invoice too (its lastUpdated moves). Only a change to an amount's input moves the amounts:
        # a reworded note leaves them as they are. None of the invoice's own patchable fields (status, PO,
        # reference, comments, notes, attention) is an input of its amounts, so its PATCH moves only its stamp.
        totals.recompute_invoice(data, invoice_id, amounts=bool(AMOUNT_INPUTS & changes.keys()))
    return get_one(data, resource, parent_id, record_id)


LINES = frozenset({"products", "timeEntries", "expenseEntries"})
AMOUNT_INPUTS = frozenset({"quantity", "price", "cost", "billableOption", "taxableFlag", "invoiceHours",
                           "hourlyRate"})


def _invoice_of(resource: Resource, record: dict) -> int | None:
    if resource.table == "invoices":
        return int(record["id"])
    invoice = record.get("invoice")
    return invoice.get("id") if isinstance(invoice, dict) and isinstance(invoice.get("id"), int) else None


def _coerce_patch_value(data: Dataset, resource: Resource, field: str, value: Any) -> Any:
    if field == "status" and resource.table == "invoices":
        wanted = value if isinstance(value, dict) else {}
        statuses = data["billingStatuses"]
        status = None
        if isinstance(wanted.get("id"), int):
            status = statuses.get(wanted["id"])
        elif isinstance(wanted.get("name"), str):
            status = next((s for s in statuses.iter() if s["name"].lower() == wanted["name"].lower()), None)
        if status is None:
            raise errors.invalid_object(resource.name, "status", "BillingStatus not found.", code="NotFound")
        return ref("status", status["id"], name=status["name"], isClosed=status["closedFlag"])
    if field in ("quantity", "price", "cost", "invoiceHours", "hourlyRate"):
        return _number(resource, field, value)
    if field in ("billableOption",):
        allowed = ("Billable", "DoNotBill", "NoCharge") + (
            ("NoDefault",) if resource.table != "products" else ()
        )
        if value not in allowed:
            raise errors.invalid_object(resource.name, field, f"{field} must be one of {', '.join(allowed)}.")
        return value
    if field.endswith("Flag"):
        if not isinstance(value, bool):
            raise errors.invalid_object(resource.name, field, f"The value for {field} must be true or false.")
        return value
    if value is not None and not isinstance(value, str):
        raise errors.invalid_object(resource.name, field, f"The value for {field} must be a string.")
    return value
