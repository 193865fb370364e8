"""The workspace's billing state: the plan in effect now, from its ``tenant_billing`` row and the clock.

Nothing is scheduled: a trial ends and a grace period runs out because the state is computed from
``trial_ends_at`` and ``grace_ends_at`` each time it is read. The rules, most generous first:

- ``comped``: Pro (given by us, no subscription);
- ``trialing``: the stored plan until ``trial_ends_at`` (no end date: Stripe says trialing, so it is), then Free;
- ``active``: the stored plan;
- ``past_due`` / ``unpaid``: the stored plan until the grace period ends (``grace_ends_at``, or ``GRACE_DAYS``
  after the failed payment), with a banner; then Free;
- anything else (``canceled``, ``none``, ``incomplete``, ``paused``, ...) and a missing row: Free.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.billing.models import TenantBilling
from app.billing.plans import FREE, GRACE_DAYS, PRO, Plan, plan

PAYMENT_FAILED = ("past_due", "unpaid")
TRIAL_ENDING_DAYS = 3  # the trial banner shows in the trial's last days


@dataclass(frozen=True)
class BillingState:
    """What the workspace may use now (``plan``, the effective one) and why (the stored row's facts)."""

    plan: Plan
    plan_key: str  # the stored plan: what was bought or given, not necessarily in effect
    status: str
    trial_ends_at: dt.datetime | None = None
    days_left_in_trial: int | None = None  # None unless a trial is running
    in_grace: bool = False  # a payment failed and Pro holds until grace_ends_at
    grace_ends_at: dt.datetime | None = None
    current_period_end: dt.datetime | None = None
    cancel_at_period_end: bool = False
    stripe_customer_id: str | None = None

    @property
    def is_free(self) -> bool:
        return self.plan.key == FREE.key

    @property
    def in_trial(self) -> bool:
        return self.status == "trialing" and not self.is_free

    @property
    def trial_ended(self) -> bool:
        """A trial that ran out without a subscription taking over."""
        return self.status == "trialing" and self.is_free

    @property
    def grace_over(self) -> bool:
        """A failed payment's grace period ran out: Free limits apply until it is paid."""
        return self.status in PAYMENT_FAILED and not self.in_grace


def state_of(row: TenantBilling | None, now: dt.datetime | None = None) -> BillingState:
    """The rules above, applied to one row (no row: Free, never subscribed)."""
    now = now or dt.datetime.now(dt.UTC)
    if row is None:
        return BillingState(plan=FREE, plan_key=FREE.key, status="none")
    free = BillingState(plan=FREE, plan_key=row.plan, status=row.status, trial_ends_at=row.trial_ends_at,
                        current_period_end=row.current_period_end,
                        cancel_at_period_end=bool(row.cancel_at_period_end),
                        stripe_customer_id=row.stripe_customer_id)
    if row.status == "comped":
        return replace(free, plan=PRO)
    if row.status == "trialing":
        if row.trial_ends_at is None or row.trial_ends_at > now:
            left = (None if row.trial_ends_at is None
                    else max(1, math.ceil((row.trial_ends_at - now) / dt.timedelta(days=1))))
            return replace(free, plan=plan(row.plan), days_left_in_trial=left)
        return free
    if row.status == "active":
        return replace(free, plan=plan(row.plan))
    if row.status in PAYMENT_FAILED:
        grace_ends = row.grace_ends_at or (
            (row.payment_failed_at or row.state_as_of or row.updated_at or now) + dt.timedelta(days=GRACE_DAYS))
        if now < grace_ends:
            return replace(free, plan=plan(row.plan), in_grace=True, grace_ends_at=grace_ends)
        return replace(free, grace_ends_at=grace_ends)
    return free


def billing_state(session: Session, now: dt.datetime | None = None) -> BillingState:
    """The current tenant's billing state (the session's tenant, through RLS)."""
    row = session.execute(select(TenantBilling)).scalar_one_or_none()
    return state_of(row, now)
