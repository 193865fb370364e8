"""Per-email budgets for emailed codes, kept alike for every address whether or not it belongs to anyone.

Wrong codes are counted per email (by its keyed id) in fixed hour and day windows that no new code resets; past
either budget, email codes are paused for the rest of that window (SSO is untouched). A check holds one slot in each
window while it runs, so concurrent guesses can never exceed the budget; a right code gives its slot back. Codes
mailed per email per day are capped in the mail job. Failed codes are audited by one delayed job per email-hour that
writes a single row with the hour's count into each tenant of the email, so nobody outside can flood an audit log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis

from app.audit.log import Actor, Origin, record
from app.auth.directory import memberships
from app.jobs.queue import enqueue
from app.jobs.runtime import job
from app.services import Services
from app.tenancy import tenant_session

WRONG_CODES_PER_HOUR = 10
WRONG_CODES_PER_DAY = 20
CODES_MAILED_PER_DAY = 10
# The hour's audit row is written just after the hour ends, so it carries the hour's whole count.
AUDIT_DELAY_SECONDS = 5
_KEEP_SECONDS = 2 * 86400  # long enough for a worker that was down for a while to catch up

_WRONG = "bi:signin:wrong:"
_MAILED = "bi:signin:mailed:"
_ADDRESS = "bi:signin:address:"
_FAILED = "bi:signin:failed:"
_FAILED_IPS = "bi:signin:failed-ips:"
_IPS_KEPT = 10
_AUDIT_JOB = "bi:signin:failed-job:"
_PAUSE_EVENT = "bi:signin:paused:"
_NOTICE = "bi:signin:notice:"


@dataclass(frozen=True)
class Window:
    name: str
    seconds: int
    limit: int


WINDOWS = (Window("hour", 3600, WRONG_CODES_PER_HOUR), Window("day", 86400, WRONG_CODES_PER_DAY))
HOUR = WINDOWS[0]


class SignInPaused(Exception):  # noqa: N818 (an event reported to error tracking, not an error of ours)
    """An address spent a window's budget of wrong codes (reported with its keyed id, never the address)."""


@dataclass(frozen=True)
class Reservation:
    """One wrong-code slot held in each window while a code is checked."""

    email_id: str
    keys: tuple[str, ...]
    counts: tuple[int, ...]
    at: float


def _clock() -> float:
    return time.time()


def _index(window: Window, at: float) -> int:
    return int(at // window.seconds)


def _key(window: Window, email_id: str, at: float) -> str:
    return f"{_WRONG}{window.name}:{email_id}:{_index(window, at)}"


def _ttl(window: Window, at: float) -> int:
    return int((_index(window, at) + 1) * window.seconds - at) + 60


def reserve(redis: Redis, email_id: str) -> Reservation | None:
    """Hold a slot for one code check, or None when the address is paused (nothing is then checked)."""
    at = _clock()
    keys = tuple(_key(w, email_id, at) for w in WINDOWS)
    pipe = redis.pipeline()
    for window, key in zip(WINDOWS, keys, strict=True):
        pipe.incr(key)
        pipe.expire(key, _ttl(window, at))
    counts = tuple(int(c) for c in pipe.execute()[0::2])
    if any(count > w.limit for count, w in zip(counts, WINDOWS, strict=True)):
        release(redis, Reservation(email_id, keys, counts, at))  # a refused check spends nothing
        return None
    return Reservation(email_id, keys, counts, at)


def release(redis: Redis, reservation: Reservation) -> None:
    """Give the slot back (the code was right, or nothing was checked)."""
    pipe = redis.pipeline()
    for key in reservation.keys:
        pipe.decr(key)
    pipe.execute()


def paused_until(redis: Redis, email_id: str) -> float | None:
    """When the address's pause ends (epoch seconds), or None when codes may be checked."""
    at = _clock()
    counts = redis.mget([_key(w, email_id, at) for w in WINDOWS])
    ends = [(_index(w, at) + 1) * w.seconds for w, c in zip(WINDOWS, counts, strict=True) if int(c or 0) >= w.limit]
    return max(ends) if ends else None


def take_mail_slot(redis: Redis, email_id: str) -> bool:
    """Count one mailed code for the address today; False past the day's cap."""
    at = _clock()
    key = f"{_MAILED}{email_id}:{_index(WINDOWS[1], at)}"
    pipe = redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, _ttl(WINDOWS[1], at))
    return int(pipe.execute()[0]) <= CODES_MAILED_PER_DAY


def first_notice(redis: Redis, email_id: str, kind: str, until: float) -> bool:
    """True once per address, kind and pause: a notice mail is never sent twice for the same reason."""
    return bool(redis.set(f"{_NOTICE}{kind}:{email_id}:{int(until)}", 1, nx=True,
                          ex=max(60, int(until - _clock()) + 60)))


def record_wrong(redis: Redis, reservation: Reservation, email: str, ip: str = "") -> bool:
    """Count a wrong code (and where it came from) for the hour's audit row; True when it spent a window's last
    slot (the pause begins)."""
    email_id, at = reservation.email_id, reservation.at
    hour = _index(HOUR, at)
    ips = f"{_FAILED_IPS}{email_id}:{hour}"
    pipe = redis.pipeline()
    pipe.set(_ADDRESS + email_id, email, ex=_KEEP_SECONDS)  # the jobs look the tenants up by address
    pipe.incr(f"{_FAILED}{email_id}:{hour}")
    pipe.expire(f"{_FAILED}{email_id}:{hour}", _KEEP_SECONDS)
    pipe.zadd(ips, {ip or "unknown": at})
    pipe.zremrangebyrank(ips, 0, -_IPS_KEPT - 1)
    pipe.expire(ips, _KEEP_SECONDS)
    pipe.set(f"{_AUDIT_JOB}{email_id}:{hour}", 1, nx=True, ex=_KEEP_SECONDS)
    if pipe.execute()[-1]:
        when = datetime.fromtimestamp((hour + 1) * HOUR.seconds + AUDIT_DELAY_SECONDS, UTC)
        enqueue(redis, audit_failed_codes_job, email_id, hour, queue="mail", at=when)
    paused = False
    for window, count in zip(WINDOWS, reservation.counts, strict=True):
        index = _index(window, at)
        if count == window.limit and redis.set(f"{_PAUSE_EVENT}{window.name}:{email_id}:{index}", 1, nx=True,
                                               ex=window.seconds + 60):
            enqueue(redis, codes_paused_job, email_id, window.name, index, queue="mail")
            paused = True
    return paused


def _tenants_of(services: Services, email_id: str) -> tuple[str, list]:
    raw = services.redis.get(_ADDRESS + email_id)
    email = raw.decode() if isinstance(raw, bytes) else ""  # the connection answers bytes (no decode_responses)
    return email, memberships(services.session_factory, email) if email else []


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@job
def audit_failed_codes_job(services: Services, email_id: str, hour: int) -> str:
    """One row per tenant of the address with the hour's count of wrong codes (nothing for an unknown address)."""
    redis = services.redis
    done = f"{_AUDIT_JOB}{email_id}:{hour}:done"
    if redis.exists(done):
        return "already written"
    count = int(redis.get(f"{_FAILED}{email_id}:{hour}") or 0)
    ips = [ip.decode() for ip in redis.zrevrange(f"{_FAILED_IPS}{email_id}:{hour}", 0, -1) if isinstance(ip, bytes)]
    _email, found = _tenants_of(services, email_id)
    for m in found:
        with tenant_session(m.tenant_id, services.session_factory) as s:
            # The row's source is the newest address a wrong code came from; the others of the hour beside it.
            record(s, m.tenant_id, Actor.system("sign-in"), "auth.code_failed", target_type="user",
                   target_id=m.user_id, origin=Origin(ip=ips[0] if ips else None),
                   after={"wrong_codes": count, "hour": _iso(hour * HOUR.seconds), "source_ips": ips})
    redis.set(done, 1, ex=_KEEP_SECONDS)
    redis.delete(f"{_FAILED}{email_id}:{hour}", f"{_FAILED_IPS}{email_id}:{hour}")
    return f"{len(found)} rows"


@job
def codes_paused_job(services: Services, email_id: str, window_name: str, index: int) -> str:
    """Report the pause to error tracking (keyed id and domain only) and audit it in each tenant of the address."""
    window = next(w for w in WINDOWS if w.name == window_name)
    until = _iso((index + 1) * window.seconds)
    email, found = _tenants_of(services, email_id)
    services.errors.capture(
        SignInPaused(f"email codes paused for the rest of the {window.name}"),
        email_id=email_id, email_domain=email.rpartition("@")[2], window=window.name, until=until)
    for m in found:
        with tenant_session(m.tenant_id, services.session_factory) as s:
            record(s, m.tenant_id, Actor.system("sign-in"), "auth.code_sign_in_paused", target_type="user",
                   target_id=m.user_id, after={"window": window.name, "wrong_codes": window.limit, "until": until})
    return f"{len(found)} rows"
