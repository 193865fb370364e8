"""Guest reviewer links: a per-recipient link to one invoice's review, no sign-in, its token stored only as a hash,
expiring and revocable."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.services import Services


def panel(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any) -> dict[str, Any]:
    """What ``review/_guest_links.html`` shows for this invoice to this user (its context variable: ``guest_panel``)."""
    return {"invoice_id": invoice_id}
