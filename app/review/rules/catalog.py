"""The sixteen rules as data (``RULES``: name, default on/off, severity, trigger, settings with defaults) and the
settings they take: ``default_settings`` and ``validate_settings``.

Settings are one JSON value per tenant, ``{rule_key: {"enabled": bool, <setting>: value}}``. Decimal settings
(percentages, money, hours) are stored as decimal strings ("20", "0.01") so nothing is lost to floats; day and
character counts are integers; watch lists are lists of strings. Values from a form (text) are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from app.review.rules.model import RuleSpec, Setting, SettingsError

MAX_NAMES = 200
MAX_NAME_LENGTH = 100
_TRUE, _FALSE = ("true", "on", "1", "yes"), ("false", "off", "0", "no", "")


def _pct(key: str, label: str, default: str) -> Setting:
    return Setting(key, label, "percent", default, Decimal(0), Decimal(100))


_SPECS = (
    RuleSpec("low_margin", "Low profit margin", True, "warning",
             "A product line's margin, (price \u2212 cost) / price, is below the threshold; an error when the "
             "price is below cost.",
             (_pct("threshold_percent", "Margin threshold (%)", "20"),
              Setting("ignore_zero_price", "Ignore zero-price lines", "flag", True))),
    RuleSpec("agreement_amount_changed", "Agreement invoice amount changed", True, "info",
             "An agreement invoice's total differs from the previous invoice on the same agreement.",
             (Setting("tolerance", "Tolerance", "money", "0.01", Decimal(0), Decimal(10) ** 9),), needs_history=True),
    RuleSpec("ticket_no_notes", "Ticket billed with no notes", True, "warning",
             "Billable time on a ticket has a time entry with empty notes."),
    RuleSpec("insufficient_notes", "Insufficient ticket notes", True, "warning",
             "A billable time entry's notes are shorter than the minimum.",
             (Setting("min_chars", "Minimum characters", "chars", 20, 1, 1000),)),
    RuleSpec("credit_memo_positive_total", "Credit memo has a positive total", True, "error",
             "A credit memo's total is above zero, so it would charge the client."),
    RuleSpec("non_billable_time", "Non-billable time on invoice", True, "info",
             "Time entries marked No Charge or Do Not Bill appear on the invoice."),
    RuleSpec("stale_time", "Stale time entries", True, "warning",
             "Billable time dated more than N days before the invoice date.",
             (Setting("days", "Older than (days)", "days", 60, 1, 3650),)),
    RuleSpec("flagged_work_type", "Flagged work type billed", False, "warning",
             "Billable time whose work type is on the watch list (ConnectWise's own work-type names).",
             (Setting("work_types", "Work types", "names", []),)),
    RuleSpec("no_tax_code", "No tax code on invoice", False, "warning", "The invoice has no tax code."),
    RuleSpec("product_not_taxable", "Product not marked taxable", False, "warning",
             "A product line is not marked taxable (only lines of the listed product classes, when any are "
             "listed).",
             (Setting("product_types", "Product types", "names", [],
                      help="ConnectWise product classes: Agreement, Bundle, Inventory, NonInventory, Service."),)),
    RuleSpec("large_expense", "Large expense", False, "warning", "An expense line at or above the threshold.",
             (Setting("threshold", "Threshold", "money", "500", Decimal(0), Decimal(10) ** 9),)),
    RuleSpec("keyword", "Keyword on the invoice", False, "error",
             "A watched word or phrase appears in customer-visible text (descriptions, notes, comments); case is "
             "ignored.",
             (Setting("keywords", "Keywords", "names", []),)),
    RuleSpec("duplicate_billing", "Duplicate billing", True, "warning",
             "The same time entry or an identical product line (item, description, quantity, price) twice on one "
             "invoice, or one time entry on two open invoices."),
    RuleSpec("hours_outlier", "Hours outlier", True, "warning",
             "One time entry with more hours than the threshold (a typo like 80 for 8.0).",
             (Setting("max_hours", "Hours threshold", "hours", "12", Decimal("0.01"), Decimal(1000)),)),
    RuleSpec("zero_amount_line", "Zero-amount billable line", True, "info",
             "A billable product, time or expense line whose amount is 0 (agreement-covered time excepted)."),
    RuleSpec("rate_differs", "Rate differs from usual", False, "info",
             "A time entry's hourly rate differs from the median rate of its work role on recent invoices by "
             "more than the threshold.",
             (_pct("threshold_percent", "Difference threshold (%)", "25"),), needs_history=True),
)
RULES: Mapping[str, RuleSpec] = MappingProxyType({spec.key: spec for spec in _SPECS})


def default_settings() -> dict[str, dict]:
    """Every rule's settings as shipped (a fresh copy, JSON-serialisable)."""
    return {spec.key: {"enabled": spec.enabled,
                       **{s.key: list(s.default) if isinstance(s.default, list) else s.default
                          for s in spec.settings}}
            for spec in _SPECS}


def validate_settings(raw: Mapping | None) -> dict[str, dict]:
    """Complete, normalised settings from ``raw`` (rules or fields it omits keep their defaults).

    Raises ``SettingsError(field, message)`` for an unknown rule or field or a value out of range."""
    out = default_settings()
    if raw is None:
        return out
    if not isinstance(raw, Mapping):
        raise SettingsError("settings", "Settings must be an object of rules.")
    for rule_key, values in raw.items():
        spec = RULES.get(rule_key) if isinstance(rule_key, str) else None
        if spec is None:
            raise SettingsError(str(rule_key), "There is no such rule.")
        if not isinstance(values, Mapping):
            raise SettingsError(rule_key, "A rule's settings must be an object.")
        by_key = {s.key: s for s in spec.settings}
        for key, value in values.items():
            field = f"{rule_key}.{key}"
            if key == "enabled":
                out[rule_key]["enabled"] = _flag(field, value)
            elif key in by_key:
                out[rule_key][key] = _value(field, by_key[key], value)
            else:
                raise SettingsError(field, "This rule has no such setting.")
    return out


def _flag(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingsError(field, "Choose on or off.")


def _value(field: str, setting: Setting, value: Any) -> Any:
    if setting.kind == "flag":
        return _flag(field, value)
    if setting.kind == "names":
        return _names(field, value)
    whole = setting.kind in ("days", "chars")
    lo, hi = setting.minimum, setting.maximum
    expected = f"Enter a {'whole ' if whole else ''}number from {lo:,} to {hi:,}."
    number = _decimal(value)
    if number is None or (whole and number != number.to_integral_value()) or not lo <= number <= hi:
        raise SettingsError(field, expected)
    if whole:
        return int(number)
    return f"{number.normalize():f}"


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str):
        return None
    text = value.strip().removesuffix("%").strip()
    if not text or len(text) > 20 or not all(c.isdigit() or c in ".-" for c in text):
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _names(field: str, value: Any) -> list[str]:
    """A watch list: a list of names (or text with one per line), trimmed, blanks and repeats dropped."""
    if isinstance(value, str):
        value = value.splitlines()
    if not isinstance(value, list | tuple):
        raise SettingsError(field, "Enter one name per line.")
    out: list[str] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, str):
            raise SettingsError(field, "Enter one name per line.")
        name = " ".join(item.split())
        if not name or name.casefold() in seen:
            continue
        if len(name) > MAX_NAME_LENGTH:
            raise SettingsError(field, f"Each entry can be at most {MAX_NAME_LENGTH} characters.")
        seen.add(name.casefold())
        out.append(name)
    if len(out) > MAX_NAMES:
        raise SettingsError(field, f"A list can hold at most {MAX_NAMES} entries.")
    return out
