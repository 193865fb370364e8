"""Inline edits of an invoice's lines and header fields on its review page (parsed in the invoice's own currency
format, validated, checked for a ConnectWise change since the snapshot, written back with PATCH, then rescanned)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.services import Services


def panel(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any) -> dict[str, Any]:
    """What ``review/_lines.html`` shows for this invoice to this user (its context variable: ``lines_panel``)."""
    return {"invoice_id": invoice_id}
