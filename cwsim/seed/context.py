"""Shared state while seeding: the RNG, the anchor date, and lookups of the references built so far."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from cwsim.serialize import iso
from cwsim.store import Dataset

# A fixed "today" keeps the data set identical run to run; invoices fall in the year before it.
ANCHOR = date(2025, 6, 30)
API_MEMBER = "bettersim_api"


@dataclass
class SeedContext:
    rng: random.Random
    invoice_count: int
    data: Dataset = field(default_factory=Dataset)
    anchor: date = ANCHOR
    refs: dict[str, dict[Any, dict]] = field(default_factory=dict)
    currencies: dict[str, dict] = field(default_factory=dict)
    customers: list[dict] = field(default_factory=list)
    members: list[dict] = field(default_factory=list)
    tax_codes: dict[int, dict] = field(default_factory=dict)
    work_roles: list[dict] = field(default_factory=list)
    contacts_by_company: dict[int, list[dict]] = field(default_factory=dict)
    agreements_by_company: dict[int, list[dict]] = field(default_factory=dict)
    tickets_by_company: dict[int, list[dict]] = field(default_factory=dict)
    projects_by_company: dict[int, list[dict]] = field(default_factory=dict)
    additions_by_agreement: dict[int, list[dict]] = field(default_factory=dict)

    def ref(self, kind: str, key: Any) -> dict:
        return self.refs[kind][key]

    def put_ref(self, kind: str, key: Any, value: dict) -> dict:
        self.refs.setdefault(kind, {})[key] = value
        return value

    def stamp(self, when: date | datetime, by: str = API_MEMBER) -> str:
        return iso(when)

    def days_before(self, days: int) -> date:
        return self.anchor - timedelta(days=days)


def at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)


def money(amount: float, decimals: int) -> float:
    """Round like the currency does (0 decimals for JPY); floats on the wire, as ConnectWise sends."""
    return float(round(amount + 0.0, decimals))
