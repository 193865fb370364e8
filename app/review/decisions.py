"""Decisions on an invoice's review: approve, undo approval, reject (with a reason), close, change status; the
outcome of the reviewers' decisions; the soft gate on open error and warning flags."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.services import Services


def panel(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any) -> dict[str, Any]:
    """What ``review/_decision.html`` shows: the state, the actions this user may take, write-back status."""
    return {"invoice_id": invoice_id, "actions": []}
