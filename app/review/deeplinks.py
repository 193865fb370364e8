"""Links from a flag to the record it is about in ConnectWise's own web UI (not the API).

ConnectWise opens a record from ``{site}/v4_6_release/services/system_io/router/openrecord.rails`` with
``recordType`` and ``recid`` (its documented URL entry point; cloud sites accept ``v4_6_release`` and forward to
their versioned codebase). Time entries, expenses and tickets have a record type of their own. Invoices and
products have none documented, so their flags link to the record they belong to: a product's agreement, else the
invoice's ticket, project or agreement. Ids only go into the URL: nothing else from the invoice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

ENTRY_POINT = "/v4_6_release/services/system_io/router/openrecord.rails"
# What each of our kinds is called by the entry point, and how the link names it.
RECORD_TYPES = {
    "time_entry": ("TimeEntryFV", "time entry"),
    "expense": ("ExpenseFV", "expense"),
    "ticket": ("ServiceFV", "ticket"),
    "project": ("ProjectHeaderFV", "project"),
    "agreement": ("AgreementFV", "agreement"),
}


@dataclass(frozen=True)
class Deeplink:
    url: str
    label: str  # "Open time entry 4711 in ConnectWise"


def record_url(site: str, company_id: str, kind: str, record_id: int) -> str:
    """The ConnectWise UI address of one record (``kind`` a key of RECORD_TYPES)."""
    record_type = RECORD_TYPES[kind][0]
    query = urlencode({"locale": "en_US", "companyName": company_id, "recordType": record_type,
                       "recid": int(record_id)})
    return f"{site.rstrip('/')}{ENTRY_POINT}?{query}"


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _ref_id(record: Mapping[str, Any] | None, name: str) -> int | None:
    ref = record.get(name) if isinstance(record, Mapping) else None
    return _positive(ref.get("id")) if isinstance(ref, Mapping) else None


def _owner_of_invoice(header: Mapping[str, Any]) -> tuple[str, int] | None:
    for kind in ("ticket", "project", "agreement"):
        found = _ref_id(header, kind)
        if found is not None:
            return kind, found
    return None


def _product(collections: Mapping[str, Any], product_id: int) -> Mapping[str, Any] | None:
    for line in collections.get("procurement/products") or ():
        if isinstance(line, Mapping) and line.get("id") == product_id:
            return line
    return None


def flag_deeplink(site: str, company_id: str, target_type: str, target_id: int,
                  header: Mapping[str, Any] | None = None,
                  collections: Mapping[str, Any] | None = None) -> Deeplink | None:
    """Where a flag's target is opened in ConnectWise; None when there is no record to open.

    ``header`` and ``collections`` are the snapshot's raw payloads, needed for invoice and product targets."""
    header, collections = header or {}, collections or {}
    if target_type in RECORD_TYPES:
        kind, record_id = target_type, int(target_id)
        label = f"Open {RECORD_TYPES[kind][1]} {record_id} in ConnectWise"
        return Deeplink(record_url(site, company_id, kind, record_id), label)
    if target_type == "product":
        agreement = _ref_id(_product(collections, int(target_id)), "agreement")
        owner = ("agreement", agreement) if agreement is not None else _owner_of_invoice(header)
        whose = "its"
    elif target_type == "invoice":
        owner, whose = _owner_of_invoice(header), "the invoice's"
    else:
        return None
    if owner is None:
        return None
    kind, record_id = owner
    return Deeplink(record_url(site, company_id, kind, record_id),
                    f"Open {whose} {RECORD_TYPES[kind][1]} {record_id} in ConnectWise")
