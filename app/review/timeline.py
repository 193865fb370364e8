"""An invoice's activity timeline: our events merged with ConnectWise's own audit trail, in time order."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.services import Services


def panel(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any) -> dict[str, Any]:
    """What ``review/_timeline.html`` shows: the merged entries, oldest first."""
    return {"invoice_id": invoice_id, "entries": []}


def fetch_connectwise(services: Services, tenant_id: uuid.UUID | str, invoice_id: int) -> int:
    """Read the invoice's ConnectWise audit trail and keep the entries not yet kept; returns how many are new.
    Called by the review page's refresh (the page itself never calls ConnectWise)."""
    return 0
