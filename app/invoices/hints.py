"""Reference hints: the ids of the records an invoice's header named at its last fetch, kept to fetch in one round.

An invoice's billing setup, bill-to company, tax code, agreement (for its additions), payments and project or
ticket are named by ids in its header, so without help they wait for the header: a second round trip to
ConnectWise. Remembering those ids from the last fetch lets ``app.invoices.service`` ask for everything at once.

Why Redis, keyed by tenant and invoice, and not the public link's row: every medium (staff preview, public page,
PDF job, branding preview) reads the same invoice and profits from the same hint, links or not; nothing here is
worth a migration or a database write per render; and losing a hint (eviction, expiry, a flush) costs one extra
round once, never a wrong document, because the pipeline checks every hinted id against the header it gets.
What is kept is ids only (usage metadata, like the usage rows of a render), never invoice content; the key
carries the tenant, so one tenant's hints are never read for another.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)
HINT_TTL_SECONDS = 30 * 86400
_MAX_ID = 2**31 - 1  # ConnectWise ids are 32-bit integers


def clean(hints: Any) -> dict[str, int]:
    """Only short names with positive integer ids; anything else is dropped (a hint is never trusted)."""
    if not isinstance(hints, Mapping):
        return {}
    return {name: ref for name, ref in hints.items()
            if isinstance(name, str) and len(name) <= 32 and isinstance(ref, int) and not isinstance(ref, bool)
            and 0 < ref <= _MAX_ID}


class ReferenceHints:
    """Hints in Redis under ``bi:invoice:refs:<tenant>:<invoice>``; a Redis outage only costs a round."""

    def __init__(self, redis: Any, ttl: int = HINT_TTL_SECONDS):
        self.redis, self.ttl = redis, ttl

    @staticmethod
    def key(tenant_id: uuid.UUID | str, invoice_id: int) -> str:
        return f"bi:invoice:refs:{tenant_id}:{int(invoice_id)}"

    def get(self, tenant_id: uuid.UUID | str | None, invoice_id: int) -> dict[str, int]:
        if self.redis is None or not tenant_id:
            return {}
        try:
            raw = self.redis.get(self.key(tenant_id, invoice_id))
            return clean(json.loads(raw)) if raw else {}
        except Exception:  # unreadable or unreachable: fetch without hints
            return {}

    def put(self, tenant_id: uuid.UUID | str | None, invoice_id: int, refs: Mapping[str, int]) -> None:
        if self.redis is None or not tenant_id:
            return
        try:
            self.redis.set(self.key(tenant_id, invoice_id), json.dumps(clean(refs), sort_keys=True), ex=self.ttl)
        except Exception:
            log.warning("could not keep an invoice's reference hints")
