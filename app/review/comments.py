"""Comments on an invoice's review, with @mentions of users and ConnectWise members (stored as references, never
markup); mentioned people added as reviewers, emailed or notified."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.services import Services


def panel(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any) -> dict[str, Any]:
    """What ``review/_comment_box.html`` shows for this invoice to this user (its context variable: ``comment_panel``)."""
    return {"invoice_id": invoice_id}
