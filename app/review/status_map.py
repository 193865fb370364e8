"""Which ConnectWise billing status each review outcome writes back: the tenant's mapping (``ReviewSettings.
status_map``: approved, rejected, closed -> a status id), the defaults chosen by name and flags where none is
picked, its validation, and the tenant's status catalogue (``/finance/billingStatuses``) kept in Redis for an hour so
pages and write-backs rarely ask ConnectWise for it.

Defaults: approved -> an active status named like "Ready to Send" or "Approved" with neither the Closed nor the Sent
flag; rejected -> one named like "Needs Correction", "Rejected" or "On Hold" with neither flag; closed -> an active
status with the Closed flag, preferring one named "Closed" (ConnectWise exports only Closed-flagged invoices to
accounting, so that is what "handled outside the review" ends in).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.connectwise.client import Client
from app.connectwise.connection import get_connection
from app.connectwise.records import BILLING_STATUS_FIELDS, BillingStatusRecord
from app.review.settings import locked_row, settings_of

log = logging.getLogger(__name__)
DECISIONS = ("approved", "rejected", "closed")
LABELS = {"approved": "Approved", "rejected": "Rejected", "closed": "Closed"}
CATALOG_TTL_SECONDS = 3600
# Name fragments in order of preference, matched case-insensitively against the status name.
_PREFERRED = {
    "approved": ("ready to send", "approved", "ready", "final"),
    "rejected": ("needs correction", "correction", "rejected", "on hold", "hold", "review"),
    "closed": ("closed",),
}


class StatusMapError(ValueError):
    """A picked status that cannot serve; ``field`` is the decision it was picked for."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class Status:
    """One ConnectWise billing status, as the mapping and the pickers need it."""

    id: int
    name: str
    sort_order: int | None = None
    default: bool = False
    closed: bool = False
    inactive: bool = False
    sent: bool = False

    @property
    def flags(self) -> str:
        """"Closed, Sent" and the like, for the pickers."""
        return ", ".join(n for n, on in (("Default", self.default), ("Closed", self.closed), ("Sent", self.sent),
                                         ("Inactive", self.inactive)) if on)


def fetch_catalog(client: Client) -> list[Status]:
    """The tenant's billing statuses from ConnectWise, in their sort order. Raises ``ConnectWiseError`` or
    ``InvalidRecord``."""
    raw = client.get_all("finance/billingStatuses", fields=BILLING_STATUS_FIELDS, cache=False)
    parsed = [BillingStatusRecord.parse(r) for r in raw]
    statuses = [Status(s.id, s.name, s.sort_order, s.default, s.closed, s.inactive, s.sent) for s in parsed]
    return sorted(statuses, key=lambda s: (s.sort_order if s.sort_order is not None else 1_000_000, s.id))


def _catalog_key(session: Session, tenant_id: uuid.UUID | str) -> str | None:
    """Per tenant and per ConnectWise site and company: a connection moved elsewhere has other statuses."""
    conn = get_connection(session)
    if conn is None:
        return None
    digest = hashlib.sha256(f"{conn.site}|{conn.company_id}".encode()).hexdigest()[:24]
    return f"bi:review:statuses:{tenant_id}:{digest}"


def cached_catalog(session: Session, redis: Any, tenant_id: uuid.UUID | str) -> list[Status] | None:
    """The catalogue kept from a recent read, or None (never asks ConnectWise)."""
    key = _catalog_key(session, tenant_id)
    if key is None or redis is None:
        return None
    try:
        raw = redis.get(key)
    except Exception:  # a cache outage only costs a read
        return None
    if not raw:
        return None
    try:
        return [Status(**item) for item in json.loads(raw)]
    except (TypeError, ValueError):
        return None


def remember_catalog(session: Session, redis: Any, tenant_id: uuid.UUID | str, statuses: Sequence[Status]) -> None:
    key = _catalog_key(session, tenant_id)
    if key is None or redis is None:
        return
    try:
        redis.set(key, json.dumps([asdict(s) for s in statuses]), ex=CATALOG_TTL_SECONDS)
    except Exception:
        log.warning("could not remember the billing statuses")


def load_catalog(session: Session, redis: Any, tenant_id: uuid.UUID | str,
                 client: Callable[[], Client]) -> list[Status]:
    """The catalogue from the cache, else read through ``client()`` (a context-managed client) and kept."""
    cached = cached_catalog(session, redis, tenant_id)
    if cached is not None:
        return cached
    with client() as cw:
        statuses = fetch_catalog(cw)
    remember_catalog(session, redis, tenant_id, statuses)
    return statuses


def _usable(status: Status, decision: str) -> bool:
    if status.inactive:
        return False
    if decision == "closed":
        return status.closed
    return not status.closed and not status.sent


def default_map(statuses: Sequence[Status]) -> dict[str, int | None]:
    """The status each decision writes when the admin has picked none (None: nothing fits)."""
    chosen: dict[str, int | None] = {}
    for decision in DECISIONS:
        usable = [s for s in statuses if _usable(s, decision)]
        pick = None
        for fragment in _PREFERRED[decision]:
            pick = next((s for s in usable if fragment in s.name.lower()), None)
            if pick is not None:
                break
        if pick is None and decision == "closed":
            pick = next(iter(usable), None)  # any Closed-flagged status closes the invoice in ConnectWise
        chosen[decision] = pick.id if pick is not None else None
    return chosen


def stored_map(session: Session, tenant_id: uuid.UUID | str) -> dict[str, int]:
    """What the admin picked (decisions absent take the defaults)."""
    stored = settings_of(session, tenant_id).status_map or {}
    return {d: int(v) for d, v in stored.items() if d in DECISIONS and isinstance(v, int) and not isinstance(v, bool)}


def effective_map(stored: Mapping[str, int], statuses: Sequence[Status]) -> dict[str, Status | None]:
    """Each decision's status: the picked one while the catalogue still has it, else the default."""
    by_id = {s.id: s for s in statuses}
    defaults = default_map(statuses)
    out: dict[str, Status | None] = {}
    for decision in DECISIONS:
        picked = stored.get(decision)
        if picked is not None:
            out[decision] = by_id.get(picked)
        else:
            default = defaults[decision]
            out[decision] = by_id[default] if default is not None else None
    return out


def validate(raw: Mapping[str, Any], statuses: Sequence[Status]) -> dict[str, int]:
    """The posted mapping (decision -> status id as text; "" = the default) checked against the catalogue; raises
    ``StatusMapError`` naming the first decision that cannot use its pick."""
    by_id = {s.id: s for s in statuses}
    picked: dict[str, int] = {}
    for decision in DECISIONS:
        value = str(raw.get(decision, "") or "").strip()
        if not value:
            continue
        if not value.isdigit() or int(value) not in by_id:
            raise StatusMapError(decision, "Pick one of your ConnectWise billing statuses.")
        status = by_id[int(value)]
        if status.inactive:
            raise StatusMapError(decision, f"“{status.name}” is inactive in ConnectWise: pick an active status.")
        if decision == "closed" and not status.closed:
            raise StatusMapError(decision, f"Close writes a status with the Closed flag; “{status.name}” has none.")
        if decision == "rejected" and (status.closed or status.sent):
            raise StatusMapError(decision, f"A rejected invoice goes back for correction; “{status.name}” has the "
                                           "Closed or Sent flag, so it would leave review instead.")
        picked[decision] = status.id
    return picked


def save(session: Session, tenant_id: uuid.UUID | str, picked: Mapping[str, int], actor: Actor,
         origin: Origin | None = None) -> bool:
    """Store a validated mapping, audited with what changed; False when nothing did."""
    tid = uuid.UUID(str(tenant_id))
    row = locked_row(session, tid)
    before = {d: v for d, v in (row.status_map or {}).items() if d in DECISIONS}
    after = {d: int(v) for d, v in picked.items() if d in DECISIONS}
    if before == after:
        return False
    row.status_map = after
    keys = sorted(set(before) | set(after))
    record(session, tid, actor, "review.status_map_changed", target_type="review_settings", target_id=tid,
           before={k: before.get(k) for k in keys if before.get(k) != after.get(k)},
           after={k: after.get(k) for k in keys if before.get(k) != after.get(k)}, origin=origin)
    return True
