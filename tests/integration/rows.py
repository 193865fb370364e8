"""A valid sample row for any tenant table, built from its metadata (so a new table needs no new test)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table
from sqlalchemy.types import JSON, BigInteger, Boolean, DateTime, Integer, LargeBinary, String, Text, Uuid

# Columns whose CHECK constraints a generic value would not meet.
OVERRIDES: dict[str, dict[str, Any]] = {
    "audit_log": {"actor_type": "system", "prev_hash": "0" * 64, "hash": "f" * 64},
    "users": {"role": "viewer"},
    "support_grants": {"reason": "Customer asked us to check their invoice sync", "minutes": 30},
    # A callable gives each row its own value (token hashes are unique across tenants).
    "public_links": {"token_hash": lambda: secrets.token_bytes(32)},
    "link_views": {"kind": "page", "viewer": "client", "total": Decimal("12.50")},
    "review_snapshots": {"total": Decimal("99.00"), "currency": "USD"},
    "review_flags": {"severity": "warning"},
    "review_sweeps": {"kind": "full", "outcome": "ok"},
    "review_callbacks": {"token_hash": lambda: secrets.token_bytes(32), "callback_ids": [1, 2, 3]},
    "review_callback_state": {"status": "failed", "reason": "ConnectWise refused to register callbacks"},
    "review_invoices": {"total": Decimal("99.00"), "currency": "USD"},
    "review_reviewers": {"source": "manual", "user_id": uuid.uuid4},
    "review_events": {"actor_type": "user"},
    "review_writebacks": {"decision": "approved"},
    "review_guest_links": {"token_hash": lambda: secrets.token_bytes(32)},
    "invoice_sends": {"kind": "invoice", "status": "sent", "delivery": "delivered", "writeback": "done"},
    "send_batches": {"source": "invoices", "total": 1},
    "send_settings": {"sent_status_id": 5, "remind_days_before": 3, "remind_every_days": 7},
    "tenant_billing": {"plan": "pro", "status": "active", "billing_interval": "month"},
}
# Tables the app role may not UPDATE (read and append; processed webhook ids may also be deleted with their tenant).
APPEND_ONLY_TABLES = {"audit_log", "link_views", "audit_retention_boundary", "mail_webhook_events", "stripe_events"}
# Tables only a SECURITY DEFINER function writes (the app role may only read them): tests seed them as the owner.
DEFINER_WRITTEN_TABLES = {"audit_retention_boundary"}
# Tables whose one row per tenant already exists once the tenant is created.
CREATED_WITH_TENANT = {"tenants", "tenant_settings", "tenant_billing"}


def _value(column: Any) -> Any:
    t = column.type
    token = uuid.uuid4().hex[:6]
    if isinstance(t, Uuid):
        return uuid.uuid4()
    if isinstance(t, (Integer, BigInteger)):
        return int(token, 16) % 100000
    if isinstance(t, Boolean):
        return False
    if isinstance(t, DateTime):
        return datetime.now(UTC)
    if isinstance(t, LargeBinary):
        return b"sample"
    if isinstance(t, JSON):
        return {"sample": True}
    if isinstance(t, (String, Text)):
        return f"s{token}@x"
    raise TypeError(f"no sample value for {column.table.name}.{column.name} ({t!r}); extend tests/integration/rows.py")


def sample_row(table: Table, tenant_id: uuid.UUID, user_id: uuid.UUID, fresh: bool = False) -> dict | None:
    """A row of ``tenant_id`` for ``table``; None when the tenant already has its only row (unless ``fresh``)."""
    if table.name == "tenants":
        return {"id": uuid.uuid4(), "name": "Intruder"} if fresh else None
    if table.name in CREATED_WITH_TENANT and not fresh:
        return None
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.name == "tenant_id":
            row["tenant_id"] = tenant_id
        elif column.name in OVERRIDES.get(table.name, {}):
            value = OVERRIDES[table.name][column.name]
            row[column.name] = value() if callable(value) else value
        elif any(fk.column.table.name == "users" for fk in column.foreign_keys):
            row[column.name] = user_id
        elif column.primary_key and column.autoincrement is True and isinstance(column.type, (Integer, BigInteger)):
            continue
        elif column.nullable or column.server_default is not None or column.default is not None:
            if column.primary_key:
                row[column.name] = _value(column)
            continue
        else:
            row[column.name] = _value(column)
    return row
