"""Guest sessions: the sessions of guest reviewer pages (under ``/g/``), a kind apart from users' sessions.

Flask has one session interface per app; this one sits in front of the users' (``server_sessions``) and, for a
request under the guest path only, opens and saves a different session: its own cookie (``bi_guest``, scoped to
the guest path, so the browser never sends it elsewhere), its own Redis keys (a SHA-256 of the id, as for users),
a short idle timeout and an absolute one. The users' cookie, which the browser also sends to ``/g/``, is ignored
there: a signed-in user opening a guest link is a guest on those pages and nothing more. A guest session can never
carry a user: Flask-Login's keys are dropped on load and on save, so Flask-Login sees nobody. CSRF works unchanged
(its token lives in whichever session the request has).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

from flask import Flask, Request, Response
from flask import request as current_request
from flask.sessions import SessionInterface, SessionMixin, session_json_serializer
from redis import Redis

from app.security.server_sessions import ServerSession

PREFIX = "bi:guest-sess:"
_ID_BYTES = 32
# Flask-Login's session keys: never in a guest session.
_USER_KEYS = ("_user_id", "_fresh", "_id", "_remember", "_remember_seconds")


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _without_user(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in _USER_KEYS}


class GuestSessionInterface(SessionInterface):
    """Sessions of the guest pages only (see the module docstring)."""

    serializer = session_json_serializer

    def __init__(self, redis: Redis, path: str, idle_seconds: int, absolute_seconds: int) -> None:
        self.redis, self.path = redis, path
        self.idle_seconds, self.absolute_seconds = idle_seconds, absolute_seconds

    def get_cookie_name(self, app: Flask) -> str:
        return "__Secure-bi_guest" if app.config.get("SESSION_COOKIE_SECURE") else "bi_guest"

    def get_cookie_path(self, app: Flask) -> str:
        return self.path

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Lax"  # an emailed link is a top-level navigation from elsewhere; forms post from our own pages

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        if not sid or len(sid) > 100:
            return ServerSession()
        raw = self.redis.get(PREFIX + _digest(sid))
        if raw is None:
            return ServerSession()
        try:
            record = json.loads(raw)
            data = self.serializer.loads(record["d"])
        except (ValueError, KeyError, TypeError):
            return ServerSession()
        now = time.time()
        if now - record.get("c", 0) > self.absolute_seconds or now - record.get("s", 0) > self.idle_seconds:
            self.redis.delete(PREFIX + _digest(sid))
            return ServerSession()
        return ServerSession(_without_user(data), sid=sid, meta=record)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        name, path = self.get_cookie_name(app), self.get_cookie_path(app)
        secure = bool(app.config.get("SESSION_COOKIE_SECURE"))
        if session.destroy_requested and session.sid is not None:
            self.redis.delete(PREFIX + _digest(session.sid))
            session.sid, session.meta = None, {}
            if not session:
                response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="Lax")
                return
        if not session and (session.sid is None or not session.modified):
            return
        now = time.time()
        meta = dict(session.meta)
        if session.sid is None or session.rotate_requested:
            if session.sid is not None:
                self.redis.delete(PREFIX + _digest(session.sid))
            session.sid = secrets.token_urlsafe(_ID_BYTES)
            meta = {"c": now}
        meta["s"] = now
        meta["d"] = self.serializer.dumps(_without_user(dict(session)))
        ttl = max(1, int(min(self.idle_seconds, self.absolute_seconds - (now - meta["c"]))))
        self.redis.set(PREFIX + _digest(session.sid), json.dumps(meta), ex=ttl)
        session.meta = meta
        response.set_cookie(name, session.sid, httponly=True, secure=secure, samesite="Lax", path=path)
        response.vary.add("Cookie")


class PathSessionInterface(SessionInterface):
    """The guest interface for requests under its path, the users' interface for every other."""

    def __init__(self, users: SessionInterface, guests: GuestSessionInterface) -> None:
        self.users, self.guests = users, guests

    def _for(self, request: Request) -> SessionInterface:
        return self.guests if request.path.startswith(self.guests.path) else self.users

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        return self._for(request).open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        self._for(current_request).save_session(app, session, response)

    def is_null_session(self, obj: object) -> bool:
        return self.users.is_null_session(obj)


def init_guest_sessions(app: Flask, redis: Redis, path: str = "/g/", idle_minutes: int = 30,
                        absolute_hours: int = 8) -> None:
    """Put guest sessions in front of the users' sessions (call after ``init_server_sessions``)."""
    guests = GuestSessionInterface(redis, path, idle_minutes * 60, absolute_hours * 3600)
    app.session_interface = PathSessionInterface(app.session_interface, guests)
