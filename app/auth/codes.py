"""Emailed one-time sign-in codes.

The request only records an *attempt* (random id kept in the browser's session) and enqueues a job; the job decides
whether the email belongs to anyone and only then makes and mails a code. So the answer and its timing are the same
for known and unknown emails. A code is 6 digits from a CSPRNG, stored only as an HMAC bound to the attempt (so it
works only in the browser that asked), expires after 10 minutes, works once, and dies after 5 wrong tries. A new
request for the same email replaces the old code.
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

from app.jobs.queue import enqueue
from app.jobs.runtime import job

CODE_TTL_SECONDS = 600
MAX_WRONG_TRIES = 5
_ATTEMPT = "bi:signin:attempt:"
_CODE = "bi:signin:code:"
_TRIES = "bi:signin:tries:"


class CheckResult(Enum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"


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
    enqueue(redis, send_code_job, attempt_id)
    return attempt_id


def attempt(redis: Redis, attempt_id: str) -> Attempt | None:
    raw = redis.get(_ATTEMPT + attempt_id)
    if raw is None:
        return None
    r = json.loads(raw)
    return Attempt(r["email"], r["ip"], r["ua"], r["at"], r.get("purpose", "sign_in"))


def issue_code(redis: Redis, attempt_id: str, email: str) -> str:
    """A fresh code for ``email``, bound to ``attempt_id``; replaces any earlier one and resets the tries."""
    code = f"{secrets.randbelow(10**6):06d}"
    email_id = _email_id(email)
    pipe = redis.pipeline()
    pipe.set(_CODE + email_id, json.dumps({"a": attempt_id, "h": _code_hash(attempt_id, code)}), ex=CODE_TTL_SECONDS)
    pipe.delete(_TRIES + email_id)
    pipe.execute()
    return code


def check_code(redis: Redis, attempt_id: str, email: str, code: str) -> CheckResult:
    """Check a code typed in the browser holding ``attempt_id``; a success consumes it."""
    email_id = _email_id(email)
    tries = redis.incr(_TRIES + email_id)
    redis.expire(_TRIES + email_id, CODE_TTL_SECONDS)
    if tries > MAX_WRONG_TRIES:
        redis.delete(_CODE + email_id)
        return CheckResult.LOCKED
    raw = redis.get(_CODE + email_id)
    if raw is None:
        return CheckResult.WRONG
    stored = json.loads(raw)
    typed = "".join(ch for ch in code if ch.isdigit())[:6]
    if stored["a"] != attempt_id or not hmac.compare_digest(stored["h"], _code_hash(attempt_id, typed)):
        if tries >= MAX_WRONG_TRIES:
            redis.delete(_CODE + email_id)
            return CheckResult.LOCKED
        return CheckResult.WRONG
    # Single use: only the caller whose delete removed the key wins a race between two correct submissions.
    if not redis.delete(_CODE + email_id):
        return CheckResult.WRONG
    redis.delete(_TRIES + email_id, _ATTEMPT + attempt_id)
    return CheckResult.OK


def may_receive_code(email: str) -> bool:
    """An active user somewhere, or platform support staff."""
    from app.auth.directory import memberships

    return bool(memberships(email)) or email in current_app.config["BI"].support_staff


@job
def send_code_job(attempt_id: str) -> str:
    """Make and mail a code when the attempt's email may sign in; otherwise do nothing (and say so only here)."""
    from app.mail.send import Message, send

    redis = current_app.extensions["redis"]
    found = attempt(redis, attempt_id)
    if found is None:
        return "expired"
    if not may_receive_code(found.email):
        return "skipped"
    code = issue_code(redis, attempt_id, found.email)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(found.requested_at))
    context = {"code": code, "ip": found.ip, "browser": _browser(found.user_agent), "when": when,
               "minutes": CODE_TTL_SECONDS // 60, "purpose": found.purpose}
    subject = "Your Better Invoice sign-in code" if found.purpose == "sign_in" else "Confirm your sign-in link"
    send(Message(found.email, subject, render_template("mail/sign_in_code.txt", **context),
                 render_template("mail/sign_in_code.html", **context)))
    return "sent"


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
