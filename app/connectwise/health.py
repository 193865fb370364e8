"""What the last real call to a tenant's ConnectWise said: answered, or failed and why, and when.

Kept in Redis per tenant (``bi:cw:health:{tenant}``) for a day: a probe's outcome, written by whoever made the call
(the dashboard's probe, the dashboard's own reads). The stored connection test (``Connection.last_test_*``) says
what the last "Test connection" found; this says whether ConnectWise answers now, so nothing shows "Connected" after
it broke. The detail is our own error text (``ConnectWiseError``), never a response body or a key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)
TTL_SECONDS = 86400
_MAX_DETAIL = 300


@dataclass(frozen=True)
class Outcome:
    ok: bool
    at: datetime
    detail: str = ""

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.at).total_seconds()


def _key(tenant_id: Any) -> str:
    return f"bi:cw:health:{tenant_id}"


def note(redis: Any, tenant_id: Any, ok: bool, detail: str = "", at: datetime | None = None) -> Outcome:
    """Record a call's outcome (a Redis outage only loses the note)."""
    outcome = Outcome(ok, at or datetime.now(UTC), "" if ok else detail[:_MAX_DETAIL])
    if redis is not None:
        try:
            redis.set(_key(tenant_id), json.dumps({"ok": outcome.ok, "at": outcome.at.isoformat(),
                                                   "detail": outcome.detail}), ex=TTL_SECONDS)
        except Exception:
            log.warning("could not record the ConnectWise call's outcome")
    return outcome


def last(redis: Any, tenant_id: Any) -> Outcome | None:
    """The last recorded outcome, or None (never recorded, expired, or Redis unreachable)."""
    if redis is None:
        return None
    try:
        raw = redis.get(_key(tenant_id))
    except Exception:
        return None
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return Outcome(bool(data["ok"]), datetime.fromisoformat(data["at"]), str(data.get("detail", "")))
    except (ValueError, KeyError, TypeError):
        return None
