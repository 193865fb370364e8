"""Request budgets toward ConnectWise, shared by every web and worker process through Redis.

Two sliding windows (60 s, sorted sets) must both have room before a request goes out: one per tenant (site +
company id, which is what ConnectWise itself throttles), and a larger safety valve per host, because cloud hosts
such as na.myconnectwise.net serve many MSPs and one of our tenants must not spend what the others need. One Lua
script checks both and takes a slot in both, atomically.

Waiting is the caller's choice: a web request waits about a second and then answers "busy"; a job may wait long.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import uuid
from collections import deque
from urllib.parse import urlsplit

_ACQUIRE = """
local tenant_key, host_key = KEYS[1], KEYS[2]
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local tenant_limit, host_limit, member = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local wait = 0
local function room(key, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if limit <= 0 or redis.call('ZCARD', key) < limit then
    return
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  wait = math.max(wait, tonumber(oldest[2]) + window - now, 0.001)
end
room(tenant_key, tenant_limit)
room(host_key, host_limit)
if wait > 0 then
  return tostring(wait)
end
for _, key in ipairs({tenant_key, host_key}) do
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000)
end
return 0
"""


class BudgetExhausted(TimeoutError):
    """No slot within the allowed wait; ``retry_after`` is when one frees up (whole seconds, at least 1)."""

    def __init__(self, retry_after: float):
        super().__init__("our request budget toward this ConnectWise site is spent for now")
        self.retry_after = max(1, math.ceil(retry_after))


def host_of(site: str) -> str:
    """The host a site URL points at (lower case, without scheme or port): what the safety valve counts."""
    return (urlsplit(site).hostname or site).lower()


class RequestBudget:
    """Per-tenant budget of ``limit`` requests per ``window`` s, inside a per-host valve of ``host_limit``.

    ``host_limit`` 0 turns the valve off. ``max_wait`` is the default wait for a slot; callers may pass less.
    """

    def __init__(self, redis, limit: int, window: float = 60.0, max_wait: float = 120.0,
                 *, host_limit: int = 0):
        self.redis, self.limit, self.window, self.max_wait = redis, limit, window, max_wait
        self.host_limit = host_limit
        self._script = redis.register_script(_ACQUIRE) if redis is not None else None
        self._local: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, site: str, company_id: str = "", *, max_wait: float | None = None) -> float:
        """Wait for a slot for this tenant on this host; returns seconds waited.

        Raises BudgetExhausted at once when the next slot is further away than the wait allows, so nobody sleeps
        through a wait that cannot end in a slot.
        """
        allowed = self.max_wait if max_wait is None else max_wait
        started = time.monotonic()
        deadline = started + max(0.0, allowed)
        while True:
            wait = self._try(site, company_id)
            if wait <= 0:
                return time.monotonic() - started
            left = deadline - time.monotonic()
            if wait > left:
                raise BudgetExhausted(wait)
            time.sleep(min(wait, 1.0, left))

    def _try(self, site: str, company_id: str) -> float:
        now = time.time()
        tenant_key, host_key = _key("tenant", f"{site}|{company_id.lower()}"), _key("host", host_of(site))
        if self._script is not None:
            result = self._script(keys=[tenant_key, host_key],
                                  args=[now, self.window, self.limit, self.host_limit, f"{now}:{uuid.uuid4().hex}"])
            return float(result)
        with self._lock:
            windows = [(self._window(tenant_key, now), self.limit), (self._window(host_key, now), self.host_limit)]
            waits = [w[0] + self.window - now for w, limit in windows if 0 < limit <= len(w)]
            if waits:
                return max(max(waits), 0.001)
            for w, _limit in windows:
                w.append(now)
            return 0.0

    def _window(self, key: str, now: float) -> deque[float]:
        window = self._local.setdefault(key, deque())
        while window and window[0] <= now - self.window:
            window.popleft()
        return window


def _key(kind: str, name: str) -> str:
    # Hashed: Redis holds no site names or company ids.
    return f"bi:cw:rate:{kind}:" + hashlib.sha256(name.encode()).hexdigest()[:24]


# The name callers used while the ceiling was per site only.
SiteRateLimiter = RequestBudget
