"""Wire shapes: references, ``_info`` blocks, date formatting and the no-nulls rule.

Records are stored with site-relative hrefs (``@/finance/invoices/5``) so one data set can answer on any
host; ``render`` turns them into absolute URLs for the request being served and drops null/empty values,
as the real API omits them (false and 0 are kept: ConnectWise sends those explicitly).
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any

HREF_PREFIX = "@/"

# Reference kind -> (collection path, _info key). Kinds not listed get "<kind>_href" under "/<kind>s".
_REF_PATHS = {
    "company": ("/company/companies", "company_href"),
    "contact": ("/company/contacts", "contact_href"),
    "member": ("/system/members", "member_href"),
    "status": ("/finance/billingStatuses", "status_href"),
    "billingStatus": ("/finance/billingStatuses", "status_href"),
    "currency": ("/finance/currencies", "currency_href"),
    "taxCode": ("/finance/taxCodes", "taxCode_href"),
    "billingTerms": ("/finance/billingTerms", "billingTerms_href"),
    "billingSetup": ("/finance/billingSetups", "billingSetup_href"),
    "ticket": ("/service/tickets", "ticket_href"),
    "project": ("/project/projects", "project_href"),
    "agreement": ("/finance/agreements", "agreement_href"),
    "agreementType": ("/finance/agreements/types", "type_href"),
    "invoice": ("/finance/invoices", "invoice_href"),
    "workRole": ("/time/workRoles", "workRole_href"),
    "workType": ("/time/workTypes", "workType_href"),
    "catalogItem": ("/procurement/catalog", "catalog_href"),
    "location": ("/system/locations", "location_href"),
    "department": ("/system/departments", "department_href"),
    "country": ("/company/countries", "country_href"),
    "state": ("/company/states", "state_href"),
    "board": ("/service/boards", "board_href"),
    "projectBoard": ("/project/boards", "board_href"),
    "priority": ("/service/priorities", "priority_href"),
    "expenseType": ("/expense/types", "type_href"),
    "paymentMethod": ("/expense/paymentMethods", "paymentMethod_href"),
    "classification": ("/expense/classifications", "classification_href"),
    "unitOfMeasure": ("/procurement/unitOfMeasures", "uom_href"),
    "securityRole": ("/system/securityRoles", "securityRole_href"),
    "invoiceTemplate": ("/finance/invoiceTemplateSetups", "invoiceTemplate_href"),
    "emailTemplate": ("/finance/invoiceEmailTemplates", "emailTemplate_href"),
    "companyStatus": ("/company/companies/statuses", "status_href"),
    "companyType": ("/company/companies/types", "type_href"),
    "serviceStatus": ("/service/boards/statuses", "status_href"),
    "projectStatus": ("/project/statuses", "status_href"),
    "timeZone": ("/system/timeZoneSetups", "timeZoneSetup_href"),
    "billingCycle": ("/finance/billingCycles", "billingCycle_href"),
    "ivItem": ("/procurement/catalog", "product_href"),
    "phase": ("/project/phases", "phase_href"),
    "salesOrder": ("/sales/orders", "salesOrder_href"),
}


def iso(value: date | datetime) -> str:
    """ConnectWise's timestamp format: UTC, no fractional seconds, trailing Z."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0, 0), tzinfo=timezone.utc)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def href(path: str) -> str:
    return HREF_PREFIX + path.lstrip("/")


def ref(kind: str, ref_id: int, href_path: str | None = None, **fields: Any) -> dict[str, Any]:
    """A nested reference ``{id, ...fields, _info: {<kind>_href}}``."""
    collection, key = _REF_PATHS.get(kind, (f"/{kind}s", f"{kind}_href"))
    out: dict[str, Any] = {"id": ref_id}
    out.update(fields)
    out["_info"] = {key: href(href_path or f"{collection}/{ref_id}")}
    return out


def audit_info(
    last_updated: str, updated_by: str, entered: str | None = None, **hrefs: str
) -> dict[str, str]:
    info = {"lastUpdated": last_updated, "updatedBy": updated_by}
    if entered:
        info["dateEntered"] = entered
        info["enteredBy"] = updated_by
    for key, path in hrefs.items():
        info[key] = href(path)
    return info


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (list, dict)) and not value)


def render(value: Any, api_base: str) -> Any:
    """Copy ``value`` for the wire: drop null/empty fields, absolutise ``@/`` hrefs against ``api_base``."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = render(item, api_base)
            if not _is_empty(item):
                out[key] = item
        return out
    if isinstance(value, list):
        return [render(item, api_base) for item in value if not _is_empty(item)]
    if isinstance(value, str) and value.startswith(HREF_PREFIX):
        return api_base + "/" + value[len(HREF_PREFIX) :]
    return value
