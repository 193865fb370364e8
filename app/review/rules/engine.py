"""``evaluate``: every enabled rule over one invoice's payloads, in the order of ``RULES``, each finding once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from app.invoices.service import InvoicePayloads
from app.review.rules import billing, text, work
from app.review.rules.catalog import RULES, validate_settings
from app.review.rules.history import History
from app.review.rules.invoice import InvoiceView, read_payloads
from app.review.rules.model import Finding

Rule = Callable[[InvoiceView, Mapping[str, Any], History | None], Iterable[Finding]]
CHECKS: Mapping[str, Rule] = {
    "low_margin": billing.low_margin,
    "agreement_amount_changed": billing.agreement_amount_changed,
    "ticket_no_notes": work.ticket_no_notes,
    "insufficient_notes": work.insufficient_notes,
    "credit_memo_positive_total": billing.credit_memo_positive_total,
    "non_billable_time": work.non_billable_time,
    "stale_time": work.stale_time,
    "flagged_work_type": work.flagged_work_type,
    "no_tax_code": billing.no_tax_code,
    "product_not_taxable": billing.product_not_taxable,
    "large_expense": billing.large_expense,
    "keyword": text.keyword,
    "duplicate_billing": billing.duplicate_billing,
    "hours_outlier": work.hours_outlier,
    "zero_amount_line": billing.zero_amount_line,
    "rate_differs": work.rate_differs,
}


def evaluate(payloads: InvoicePayloads, settings: Mapping | None = None,
             history: History | None = None) -> list[Finding]:
    """The findings of every enabled rule on this invoice (``settings`` None: the defaults; ``history`` None: the
    agreement and usual-rate checks stay quiet). Raises ``SettingsError`` for settings that do not validate."""
    config = validate_settings(settings)
    view = read_payloads(payloads)
    if view is None:
        return []
    out: list[Finding] = []
    seen: set[tuple[str, str, int]] = set()
    for key in RULES:
        if not config[key]["enabled"]:
            continue
        for finding in CHECKS[key](view, config[key], history):
            if finding.key not in seen:
                seen.add(finding.key)
                out.append(finding)
    return out
