"""Emailed one-time sign-in codes.

The request only records an *attempt* (random id kept in the browser's session) and enqueues a job; the job decides
whether the email belongs to anyone, whether its workspaces take codes, and only then makes and mails a code (or a
note saying why not). So the answer, its timing and the work done are the same for known and unknown emails. A code
is 6 digits from a CSPRNG, stored only as an HMAC bound to the attempt (so it works only in the browser that asked),
expires after 10 minutes, works once, and dies after 5 wrong tries. A new request for the same email replaces the
old code but never the address's budget of wrong codes (``app.auth.lockout``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from enum import Enum

from flask import current_app, render_template
from redis import Redis

from app.auth import lockout
from app.auth.directory import memberships
from app.jobs.queue import enqueue
from app.jobs.runtime import job
from app.mail.send import Message, send
from app.services import Services

CODE_TTL_SECONDS = 600
MAX_WRONG_TRIES = 5
_ATTEMPT = "bi:signin:attempt:"
_CODE = "bi:signin:code:"
_TRIES = "bi:signin:tries:"
# Parsed and compared against when there is no code, so both paths do the same work.
_NO_CODE = json.dumps({"a": "-" * 24, "h": "0" * 64})


class CheckResult(Enum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"  # this code had its five tries
    PAUSED = "paused"  # the address spent its budget of wrong codes for now


@dataclass(frozen=True)
class Attempt:
    email: str
    ip: str
    user_agent: str
    requested_at: float
    purpose: str


def _key(purpose: str) -> bytes:
    return hmac.new(current_app.config["SECRET_KEY"].encode(), purpose.encode(), hashlib.sha256).digest()


def _email_id(email: str) -> str:
    return hmac.new(_key("signin-email"), email.encode(), hashlib.sha256).hexdigest()


def _code_hash(attempt_id: str, code: str) -> str:
    return hmac.new(_key("signin-code"), f"{attempt_id}|{code}".encode(), hashlib.sha256).hexdigest()


def start_attempt(redis: Redis, email: str, ip: str, user_agent: str, purpose: str = "sign_in") -> str:
    """Record a code request and enqueue the job that may send it; returns the attempt id for the session."""
    attempt_id = secrets.token_urlsafe(18)
    record = {"email": email, "ip": ip, "ua": user_agent[:200], "at": time.time(), "purpose": purpose}
    redis.set(_ATTEMPT + attempt_id, json.dumps(record), ex=CODE_TTL_SECONDS)
    enqueue(redis, send_code_job, attempt_id, queue="mail")
    return attempt_id


def attempt(redis: Redis, attempt_id: str) -> Attempt | None:
    raw = redis.get(_ATTEMPT + attempt_id)
    if raw is None:
        return None
    r = json.loads(raw)
    return Attempt(r["email"], r["ip"], r["ua"], r["at"], r.get("purpose", "sign_in"))


def issue_code(redis: Redis, attempt_id: str, email: str) -> str:
    """A fresh code for ``email``, bound to ``attempt_id``; replaces any earlier one (the budget of wrong codes stays)."""
    code = f"{secrets.randbelow(10**6):06d}"
    stored = {"a": attempt_id, "h": _code_hash(attempt_id, code)}
    redis.set(_CODE + _email_id(email), json.dumps(stored), ex=CODE_TTL_SECONDS)
    return code


def check_code(redis: Redis, attempt_id: str, email: str, code: str, ip: str = "") -> CheckResult:
    """Check a code typed in the browser holding ``attempt_id``; a success consumes it.

    Every step runs alike whether or not the address has a code: the tries, the address's budget, the hash.
    """
    email_id = _email_id(email)
    tries_key = _TRIES + attempt_id
    tries = redis.incr(tries_key)
    redis.expire(tries_key, CODE_TTL_SECONDS)  # outlives the attempt's code, so a dead attempt stays dead
    if tries > MAX_WRONG_TRIES:
        return CheckResult.LOCKED
    reservation = lockout.reserve(redis, email_id)
    if reservation is None:
        return CheckResult.PAUSED
    raw = redis.get(_CODE + email_id)
    stored = json.loads(raw or _NO_CODE)
    typed = "".join(ch for ch in code if ch.isdigit())[:6]
    matches = hmac.compare_digest(stored["h"], _code_hash(attempt_id, typed))
    if not (matches and hmac.compare_digest(stored["a"], attempt_id)):
        lockout.record_wrong(redis, reservation, email, ip)
        if tries >= MAX_WRONG_TRIES:
            redis.delete(_ATTEMPT + attempt_id)
            return CheckResult.LOCKED
        return CheckResult.WRONG
    # Single use: only the caller whose delete removed the key wins a race between two correct submissions.
    if not redis.delete(_CODE + email_id):
        return CheckResult.WRONG
    lockout.release(redis, reservation)
    redis.delete(tries_key, _ATTEMPT + attempt_id)
    return CheckResult.OK


def may_receive_code(services: Services, email: str) -> bool:
    """An active user somewhere, or platform support staff."""
    return bool(memberships(services.session_factory, email)) or email in services.config.support_staff


def code_decision(services: Services, email: str, purpose: str) -> str:
    """What a code request for ``email`` gets: "code", "sso_required" (a note instead) or "none".

    A link code only proves the address of someone their provider already signed in, so workspace policy does not
    apply to it; a break-glass code is for owners of a workspace that requires SSO.
    """
    if purpose == "sign_up":  # anyone may start a workspace; an existing account is only told after the code
        return "code"
    found = memberships(services.session_factory, email)
    if purpose == "link":
        return "code" if found else "none"
    if purpose == "break_glass":
        return "code" if any(m.require_sso and m.role == "owner" for m in found) else "none"
    if email in services.config.support_staff or any(m.allows("email_code") for m in found):
        return "code"
    return "sso_required" if found else "none"


@job
def send_code_job(services: Services, attempt_id: str) -> str:
    """Make and mail a code when the attempt's email may have one; else maybe a note why; the browser never knows."""
    redis = services.redis
    found = attempt(redis, attempt_id)
    if found is None:
        return "expired"
    email_id = _email_id(found.email)
    until = lockout.paused_until(redis, email_id)
    if until is not None:
        if may_receive_code(services, found.email) and lockout.first_notice(redis, email_id, "paused", until):
            _send_notice(services, found, "paused", until)
        return "paused"
    if not lockout.take_mail_slot(redis, email_id):
        return "capped"
    decision = code_decision(services, found.email, found.purpose)
    if decision == "sso_required":
        hour_end = (time.time() // 3600 + 1) * 3600
        if lockout.first_notice(redis, email_id, "sso_required", hour_end):
            _send_notice(services, found, "sso_required", hour_end)
        return "sso required"
    if decision == "none":
        return "skipped"
    _send_code(services, found, issue_code(redis, attempt_id, found.email))
    return "sent"


def _send_code(services: Services, found: Attempt, code: str) -> None:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(found.requested_at))
    context = {"code": code, "ip": found.ip, "browser": _browser(found.user_agent), "when": when,
               "minutes": CODE_TTL_SECONDS // 60, "purpose": found.purpose}
    subject = {"sign_in": "Your Better Invoice sign-in code", "link": "Confirm your sign-in link",
               "break_glass": "Your Better Invoice break-glass sign-in code",
               "sign_up": "Your Better Invoice sign-up code"}[found.purpose]
    send(services, Message(found.email, subject, render_template("mail/sign_in_code.txt", **context),
                 render_template("mail/sign_in_code.html", **context)))


def _send_notice(services: Services, found: Attempt, reason: str, until: float) -> None:
    """Tell the mailbox why no code came: codes are paused, or its workspaces require Google or Microsoft."""
    context = {"reason": reason, "until": time.strftime("%H:%M UTC", time.gmtime(until)), "ip": found.ip,
               "browser": _browser(found.user_agent)}
    subject = ("Sign-in codes are paused for your address" if reason == "paused"
               else "Your workspace requires Google or Microsoft sign-in")
    send(services, Message(found.email, subject, render_template("mail/sign_in_notice.txt", **context),
                 render_template("mail/sign_in_notice.html", **context)))


def _browser(user_agent: str) -> str:
    for name in ("Edg", "Firefox", "Chrome", "Safari"):
        if name in user_agent:
            browser = {"Edg": "Edge"}.get(name, name)
            break
    else:
        browser = "an unknown browser"
    for system in ("Windows", "Mac OS X", "Android", "iPhone", "Linux"):
        if system in user_agent:
            return f"{browser} on {system.replace('Mac OS X', 'macOS')}"
    return browser
