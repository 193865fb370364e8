"""The short-lived Redis cache of raw ConnectWise responses, per tenant, and how a write makes it stale.

Entries: ``bi:cw:cache:{tenant}:{sha256(company | generation | url)}``, living ``cache_ttl`` seconds. Every cached
URL belongs to one *collection*: its API path with a trailing record id or ``/count`` removed, so
``finance/invoices/3``, ``finance/invoices?conditions=...`` and ``finance/invoices/count`` are all
``finance/invoices``, while ``finance/invoices/3/routings`` is a collection of its own.

Invalidation is by generation, never by scanning: each (tenant, company, collection) has a counter
``bi:cw:gen:{tenant}:{sha256(company | collection)[:24]}`` that is part of every entry's key. A write bumps the
counters of the collection it wrote into (a PATCH of ``procurement/products/20001`` makes every cached product
list stale, the invoice's ``invoice/id=3`` list included) and of any further collections the caller names; the
old entries are never read again and expire on their own. A read computes its key (and so its generation) before
it asks ConnectWise, so a read that was already in flight when the write landed stores under the old generation
and cannot bring the stale answer back. Counters live a day after their last write, far longer than any entry, so
a counter that expires has no entry left to resurrect. A Redis outage costs round trips, never correctness: reads then miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)
_ID_OR_COUNT = re.compile(r"^(\d+|count)$")
GENERATION_TTL_SECONDS = 86400


def collection(url_or_path: str) -> str:
    """The collection a URL or API path reads or writes (see the module docstring)."""
    path = urlsplit(url_or_path).path
    path = path.split("/apis/3.0/", 1)[-1].strip("/")
    parts = path.split("/")
    if len(parts) > 1 and _ID_OR_COUNT.match(parts[-1]):
        parts = parts[:-1]
    return "/".join(parts)


class ResponseCache:
    """One client's view of the cache: a tenant, a company id and a TTL; inert without Redis, tenant or TTL."""

    def __init__(self, redis: Any, tenant_id: str | None, company_id: str, ttl: int):
        self.redis, self.tenant_id, self.company_id, self.ttl = redis, tenant_id, company_id, ttl

    @property
    def enabled(self) -> bool:
        return self.redis is not None and bool(self.tenant_id) and self.ttl > 0

    def _gen_key(self, name: str) -> str:
        digest = hashlib.sha256(f"{self.company_id}|{name}".encode()).hexdigest()[:24]
        return f"bi:cw:gen:{self.tenant_id}:{digest}"

    def key(self, url: str) -> str | None:
        """The entry key for ``url`` at its collection's current generation; None when caching is off."""
        if not self.enabled:
            return None
        try:
            generation = self.redis.get(self._gen_key(collection(url)))
        except Exception:  # no generation known: do not cache at all rather than risk a stale hit
            return None
        gen = generation.decode() if isinstance(generation, bytes) else (generation or "0")
        digest = hashlib.sha256(f"{self.company_id}|{gen}|{url}".encode()).hexdigest()
        return f"bi:cw:cache:{self.tenant_id}:{digest}"

    def get(self, key: str | None) -> tuple[Any, dict[str, str]] | None:
        if key is None:
            return None
        try:
            raw = self.redis.get(key)
        except Exception:  # a cache outage must not stop the work
            return None
        if raw is None:
            return None
        entry = json.loads(raw)
        return entry["body"], entry.get("headers", {})

    def put(self, key: str | None, body: Any, headers: dict[str, str] | None = None) -> None:
        if key is None:
            return
        try:
            self.redis.set(key, json.dumps({"body": body, "headers": {"link": (headers or {}).get("link", "")}}),
                           ex=self.ttl)
        except Exception:
            log.warning("connectwise cache write failed")

    def invalidate(self, *names: str) -> None:
        """Make every cached read of these collections stale (for this tenant and company)."""
        if self.redis is None or not self.tenant_id:
            return
        try:
            pipe = self.redis.pipeline()
            for name in dict.fromkeys(names):
                pipe.incr(self._gen_key(name))
                pipe.expire(self._gen_key(name), GENERATION_TTL_SECONDS)
            pipe.execute()
        except Exception:
            # The write itself succeeded; its stale reads end with their TTL.
            log.warning("connectwise cache invalidation failed")
