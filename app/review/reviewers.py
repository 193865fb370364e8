"""An invoice's reviewers: seeded once from its ConnectWise invoice routing, then managed here (we are the source of
truth), and their states (waiting, viewed, approved, rejected)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.services import Services


def panel(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any) -> dict[str, Any]:
    """What ``review/_reviewers.html`` shows for this invoice to this user."""
    return {"invoice_id": invoice_id, "reviewers": [], "can_manage": False}


def mark_viewed(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any) -> None:
    """The user opened the review page: a waiting reviewer becomes "Viewed · time" (an event once per view)."""
