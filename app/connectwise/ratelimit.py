"""A per-site ceiling on requests toward ConnectWise, shared by every web and worker process through Redis.

Sliding window of 60 s kept as a sorted set per site; a Lua script makes check-and-add atomic.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import deque

_ACQUIRE = """
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


class SiteRateLimiter:
    """Blocks until a request toward ``site`` fits under ``limit`` per ``window`` seconds."""

    def __init__(self, redis, limit: int, window: float = 60.0, max_wait: float = 120.0):  # type: ignore[no-untyped-def]
        self.redis, self.limit, self.window, self.max_wait = redis, limit, window, max_wait
        self._script = redis.register_script(_ACQUIRE) if redis is not None else None
        self._local: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, site: str) -> float:
        """Wait for a slot; returns seconds waited. Raises TimeoutError past ``max_wait``."""
        waited, deadline = 0.0, time.monotonic() + self.max_wait
        while True:
            wait = self._try(site)
            if wait <= 0:
                return waited
            if time.monotonic() + wait > deadline:
                raise TimeoutError("our request ceiling toward this ConnectWise site is reached")
            time.sleep(min(wait, 1.0))
            waited += min(wait, 1.0)

    def _try(self, site: str) -> float:
        now = time.time()
        if self._script is not None:
            key = "bi:cw:rate:" + hashlib.sha256(site.encode()).hexdigest()[:24]
            result = self._script(keys=[key], args=[now, self.window, self.limit, f"{now}:{uuid.uuid4().hex}"])
            return float(result)
        with self._lock:
            window = self._local.setdefault(site, deque())
            while window and window[0] <= now - self.window:
                window.popleft()
            if len(window) < self.limit:
                window.append(now)
                return 0.0
            return window[0] + self.window - now
