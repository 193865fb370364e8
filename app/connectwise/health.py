"""What the last real call to a tenant's ConnectWise said: answered, or failed and why, and when.

Kept in Redis per tenant (``bi:cw:health:{tenant}``) for a day, written by whoever made the call: every call of a
tenant's client (``tenant_client`` turns ``Client(note_health=True)`` on, so a page, a job or the CLI that finds the
keys revoked says so) through ``observe``, and the dashboard's probe and reads through ``note``. ``observe`` is cheap:
a failure is always written, an answer only when this process last wrote something else or wrote it more than
``REFRESH_SECONDS`` ago (a page of parallel reads is one SET, not one per read).

The stored connection test (``Connection.last_test_*``) says what the last "Test connection" found; this says whether
ConnectWise answers now, so nothing shows "Connected" after it broke. The detail is our own error text
(``ConnectWiseError``), never a response body or a key.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)
TTL_SECONDS = 86400
_MAX_DETAIL = 300
REFRESH_SECONDS = 5.0
# What this process last wrote per tenant: (ok, monotonic time); only to skip repeating an unchanged answer.
_written: dict[str, tuple[bool, float]] = {}
_written_lock = threading.Lock()


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
        else:
            with _written_lock:
                _written[str(tenant_id)] = (ok, time.monotonic())
    return outcome


def observe(redis: Any, tenant_id: Any, ok: bool, detail: str = "") -> None:
    """Record one client call's outcome, skipping an answer this process already wrote within REFRESH_SECONDS."""
    if redis is None or tenant_id is None:
        return
    if ok:
        with _written_lock:
            seen = _written.get(str(tenant_id))
        # Another process may have written a failure since: at worst it stands REFRESH_SECONDS longer.
        if seen is not None and seen[0] and time.monotonic() - seen[1] < REFRESH_SECONDS:
            return
    note(redis, tenant_id, ok, detail)


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
