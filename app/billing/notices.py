"""What a page tells the workspace about its plan: the trial ending or ended, a failed payment's grace period.
The templates render it (``billing/_plan_banner.html``) with an upgrade or manage link for those who may."""

from __future__ import annotations

from dataclasses import dataclass

from app.billing.plans import FREE
from app.billing.state import TRIAL_ENDING_DAYS, BillingState


@dataclass(frozen=True)
class Notice:
    kind: str  # trial_ending | trial_ended | grace | grace_over
    text: str
    action: str  # what the link does: "Upgrade to Pro" or "Update your card"


def _free_limits() -> str:
    return f"up to {FREE.max_users} users and {FREE.max_review_invoices} invoices reviewed per sweep"


def plan_notice(state: BillingState) -> Notice | None:
    """The banner the state calls for, or None (most of the time)."""
    if state.in_trial and state.days_left_in_trial is not None and state.days_left_in_trial <= TRIAL_ENDING_DAYS:
        days = state.days_left_in_trial
        return Notice("trial_ending", f"Your trial ends in {days} day{'' if days == 1 else 's'}. After that the "
                      f"Free plan applies ({_free_limits()}); nothing is deleted.", "Upgrade to Pro")
    if state.trial_ended:
        return Notice("trial_ended", f"Your trial has ended: the Free plan applies ({_free_limits()}). Nothing was "
                      "deleted; what is beyond the limits is read-only.", "Upgrade to Pro")
    if state.in_grace and state.grace_ends_at is not None:
        return Notice("grace", "A payment failed. Pro stays on until "
                      f"{state.grace_ends_at:%d %B %Y}; after that the Free plan's limits apply.",
                      "Update your card")
    if state.grace_over:
        return Notice("grace_over", f"A payment failed and the grace period has ended: the Free plan applies "
                      f"({_free_limits()}) until it is paid. Nothing was deleted.", "Update your card")
    return None
