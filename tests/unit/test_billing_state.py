"""The effective plan from a workspace's billing row and the clock (``app.billing.state``), and the banners it
calls for (``app.billing.notices``): no database, the rows built in memory."""

from __future__ import annotations

import datetime as dt

import pytest

from app.billing.limits import review_limit, seat_limit
from app.billing.models import TenantBilling
from app.billing.notices import plan_notice
from app.billing.plans import FREE, GRACE_DAYS, PRO
from app.billing.state import state_of

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def row(status: str, plan: str = "pro", **fields) -> TenantBilling:  # type: ignore[no-untyped-def]
    return TenantBilling(plan=plan, status=status, cancel_at_period_end=False, **fields)


def test_comped_is_pro_and_unlimited():
    state = state_of(row("comped"), NOW)
    assert state.plan is PRO and seat_limit(state) is None and review_limit(state) is None
    assert plan_notice(state) is None


def test_active_subscription_is_its_plan():
    assert state_of(row("active"), NOW).plan is PRO
    assert state_of(row("active", plan="free"), NOW).plan is FREE  # never more than was bought


def test_a_running_trial_is_pro_with_the_days_left_rounded_up():
    state = state_of(row("trialing", trial_ends_at=NOW + 13 * DAY + dt.timedelta(hours=1)), NOW)
    assert state.plan is PRO and state.in_trial and not state.trial_ended
    assert state.days_left_in_trial == 14
    assert plan_notice(state) is None  # no banner until the trial's last days


def test_the_trial_banner_counts_down_in_the_last_days():
    notice = plan_notice(state_of(row("trialing", trial_ends_at=NOW + 2 * DAY), NOW))
    assert notice is not None and notice.kind == "trial_ending"
    assert notice.text.startswith("Your trial ends in 2 days.")
    last = plan_notice(state_of(row("trialing", trial_ends_at=NOW + dt.timedelta(hours=3)), NOW))
    assert last is not None and last.text.startswith("Your trial ends in 1 day.")


def test_an_ended_trial_is_free_with_no_job_needed():
    state = state_of(row("trialing", trial_ends_at=NOW - dt.timedelta(seconds=1)), NOW)
    assert state.plan is FREE and state.trial_ended and not state.in_trial
    assert seat_limit(state) == 3 and review_limit(state) == 25
    notice = plan_notice(state)
    assert notice is not None and notice.text.startswith("Your trial has ended")


def test_trialing_without_an_end_date_trusts_stripe():
    assert state_of(row("trialing"), NOW).plan is PRO


@pytest.mark.parametrize("status", ["past_due", "unpaid"])
def test_a_failed_payment_keeps_pro_until_the_grace_period_ends(status: str):
    held = state_of(row(status, payment_failed_at=NOW - DAY, grace_ends_at=NOW + DAY), NOW)
    assert held.plan is PRO and held.in_grace and held.grace_ends_at == NOW + DAY
    notice = plan_notice(held)
    assert notice is not None and notice.kind == "grace" and "02 December 2026" in notice.text
    over = state_of(row(status, payment_failed_at=NOW - 8 * DAY, grace_ends_at=NOW - DAY), NOW)
    assert over.plan is FREE and not over.in_grace and over.grace_over
    notice = plan_notice(over)
    assert notice is not None and notice.kind == "grace_over"


def test_grace_without_a_stored_end_runs_from_the_failed_payment():
    failed = NOW - (GRACE_DAYS * DAY) + dt.timedelta(hours=1)
    assert state_of(row("past_due", payment_failed_at=failed), NOW).plan is PRO
    assert state_of(row("past_due", payment_failed_at=failed - 2 * dt.timedelta(hours=1)), NOW).plan is FREE


@pytest.mark.parametrize("status", ["canceled", "none", "incomplete", "incomplete_expired", "paused", "mystery"])
def test_everything_else_is_free(status: str):
    state = state_of(row(status), NOW)
    assert state.plan is FREE and state.plan_key == "pro" and state.status == status


def test_no_row_is_free():
    state = state_of(None, NOW)
    assert state.plan is FREE and state.status == "none"
