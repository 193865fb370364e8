"""The plan's limits as the rest of the app asks for them: seats (active users who can sign in) and the open
invoices a review sweep reviews. ``None`` is unlimited.

Services below billing (users, member sync) take the seat limit as an explicit argument from their page or job;
review takes its limit from its job entry point. A downgrade never removes anything: users who already have access
keep it (locking people out mid-work, and choosing who, is the owner's call, not ours), but no new seat is given
until the workspace is under the limit again; reviewed invoices beyond the review limit stay, read-only.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.billing.state import BillingState, billing_state
from app.users.service import seats_used


def seat_limit(state: BillingState) -> int | None:
    return state.plan.max_users


def review_limit(state: BillingState) -> int | None:
    return state.plan.max_review_invoices


def seat_limit_now(session: Session) -> int | None:
    """The current tenant's seat limit, for a job or page handing it to a service below billing."""
    return seat_limit(billing_state(session))


def review_limit_now(session: Session) -> int | None:
    """The current tenant's review limit, for the sweep's job entry point."""
    return review_limit(billing_state(session))


def seats_message(state: BillingState, used: int) -> str:
    """Why no seat is left, with what to do about it."""
    limit = seat_limit(state)
    over = f" ({used} have access now; nobody loses it)" if limit is not None and used > limit else ""
    return (f"The {state.plan.name} plan includes up to {limit} users with access{over}. "
            "Upgrade to Pro to add more.")


def can_add_user(session: Session, state: BillingState) -> tuple[bool, str]:
    """Whether one more active user with access fits the plan; the message says why not (an upgrade prompt)."""
    limit = seat_limit(state)
    if limit is None:
        return True, ""
    used = seats_used(session)
    if used < limit:
        return True, ""
    return False, seats_message(state, used)
