"""The plans, as data: what each allows. Everything that enforces or shows a limit reads it from here."""

from __future__ import annotations

from dataclasses import dataclass

TRIAL_DAYS = 14
GRACE_DAYS = 7  # after a failed payment, Pro stays Pro this long before Free limits apply


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    max_users: int | None  # active users with sign-in access; None: unlimited
    max_review_invoices: int | None  # open invoices reviewed per sweep; None: unlimited
    intervals: tuple[str, ...]  # the billing intervals it is sold on ("month", "year"); () for free


FREE = Plan(key="free", name="Free", max_users=3, max_review_invoices=25, intervals=())
PRO = Plan(key="pro", name="Pro", max_users=None, max_review_invoices=None, intervals=("month", "year"))
PLANS: dict[str, Plan] = {p.key: p for p in (FREE, PRO)}


def plan(key: str) -> Plan:
    """The plan by key; an unknown key is Free (never more than was paid for)."""
    return PLANS.get(key, FREE)
