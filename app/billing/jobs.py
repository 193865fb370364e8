"""Billing's hand in periodic jobs that sit below it: the member sync's fan-out, given each tenant's seat limit."""

from __future__ import annotations

from app.billing.limits import seat_limit_now
from app.connectwise.members import sync_all_tenants
from app.jobs.runtime import job
from app.services import Services


@job
def sync_members_all_tenants(services: Services) -> int:
    """The periodic member sync: a queued sync per connected tenant, new members held to the plan's seats."""
    return sync_all_tenants(seat_limit_of=seat_limit_now)
