"""The values the rules trade in: ``Finding`` (what a rule reports), ``RuleSpec`` and ``Setting`` (what a rule is
and which settings it takes), and ``SettingsError`` (a setting that does not validate, named by its field)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEVERITIES = ("error", "warning", "info")
TARGET_TYPES = ("invoice", "product", "time_entry", "expense", "ticket")


@dataclass(frozen=True)
class Finding:
    """One problem on one invoice; its identity is (rule, target_type, target_id), stable across re-scans."""

    rule: str
    severity: str
    target_type: str
    target_id: int
    message: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.rule, self.target_type, self.target_id)


@dataclass(frozen=True)
class Setting:
    """One setting of a rule: ``kind`` is percent, money, hours (Decimal), days, chars (int), flag or names."""

    key: str
    label: str
    kind: str
    default: Any
    minimum: Any = None
    maximum: Any = None
    help: str = ""


@dataclass(frozen=True)
class RuleSpec:
    """A rule's name, what trips it, whether it ships on, its severity and its settings."""

    key: str
    name: str
    enabled: bool
    severity: str  # the usual severity; low_margin raises "error" instead when a line is priced below cost
    trigger: str
    settings: tuple[Setting, ...] = ()
    needs_history: bool = False


class SettingsError(ValueError):
    """A rule setting that does not validate; ``field`` is "rule_key.setting_key" (or "rule_key")."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message
