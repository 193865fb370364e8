"""Server-side sessions in Redis: the cookie carries only a random 256-bit id; everything else stays on the server.

Redis keys hold a SHA-256 of the id, never the id itself, so a dump of Redis cannot be replayed as cookies. Each
session also records when it started, when it was last used, and from where, so a user can see and end their
sessions; a per-user set indexes them so deactivating a user ends all of theirs.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Request, Response
from flask import request as current_request
from flask.sessions import SessionInterface, SessionMixin, session_json_serializer
from redis import Redis
from werkzeug.datastructures import CallbackDict

PREFIX = "bi:sess:"
USER_INDEX = "bi:user-sess:"
_ID_BYTES = 32


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _user_index(user_key: str) -> str:
    return USER_INDEX + user_key


class ServerSession(CallbackDict, SessionMixin):
    """Session data plus the server-side bookkeeping; ``rotate()`` asks for a new id at the next save."""

    def __init__(self, initial: dict | None = None, sid: str | None = None, meta: dict | None = None) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(initial or {}, on_update)
        self.sid = sid
        self.meta = meta or {}
        self.modified = False
        self.rotate_requested = False
        self.destroy_requested = False

    @property
    def new(self) -> bool:  # type: ignore[override]
        return self.sid is None

    def rotate(self) -> None:
        """A new id for the same browser (at sign-in): the old id stops working at once."""
        self.rotate_requested = True
        self.modified = True

    def destroy(self) -> None:
        """End this session on the server (sign-out)."""
        self.destroy_requested = True
        self.clear()


@dataclass(frozen=True)
class SessionInfo:
    """What a user sees of one of their sessions."""

    public_id: str
    created: float
    last_seen: float
    ip: str
    user_agent: str
    current: bool


class RedisSessionInterface(SessionInterface):
    serializer = session_json_serializer

    def __init__(self, redis: Redis, idle_seconds: int, absolute_seconds: int) -> None:
        self.redis = redis
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds

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
            self._delete(sid, record.get("u"))
            return ServerSession()
        return ServerSession(data, sid=sid, meta=record)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        if session.destroy_requested and session.sid is not None:
            self._delete(session.sid, session.meta.get("u"))
            session.sid, session.meta = None, {}
            if not session:
                response.delete_cookie(name, domain=domain, path=path, secure=self.get_cookie_secure(app),
                                       httponly=True, samesite=self.get_cookie_samesite(app))
                return
            # Something was put in after the end (a "signed out" message): it goes into a brand-new session.
        if not session and session.sid is None:
            return
        if not session and not session.modified:
            return
        now = time.time()
        meta = dict(session.meta)
        if session.sid is None or session.rotate_requested:
            if session.sid is not None:
                self._delete(session.sid, meta.get("u"))
            session.sid = secrets.token_urlsafe(_ID_BYTES)
            meta = {"c": now}
        user_key = session.get("_user_id")
        meta.update({
            "s": now,
            "u": user_key,
            "ip": current_request.remote_addr or "",
            "ua": (current_request.user_agent.string or "")[:200],
        })
        meta["d"] = self.serializer.dumps(dict(session))
        ttl = max(1, int(min(self.idle_seconds, self.absolute_seconds - (now - meta["c"]))))
        digest = _digest(session.sid)
        pipe = self.redis.pipeline()
        pipe.set(PREFIX + digest, json.dumps(meta), ex=ttl)
        if user_key:
            pipe.sadd(_user_index(user_key), digest)
            pipe.expire(_user_index(user_key), self.absolute_seconds)
        pipe.execute()
        session.meta = meta
        response.set_cookie(name, session.sid, httponly=True, secure=self.get_cookie_secure(app),
                            samesite=self.get_cookie_samesite(app), domain=domain, path=path)
        response.vary.add("Cookie")

    def _delete(self, sid: str, user_key: str | None) -> None:
        digest = _digest(sid)
        pipe = self.redis.pipeline()
        pipe.delete(PREFIX + digest)
        if user_key:
            pipe.srem(_user_index(user_key), digest)
        pipe.execute()


def public_id(digest: str) -> str:
    """A short handle for a session shown to its user (a prefix of the hash, never the cookie value)."""
    return digest[:16]


def user_sessions(redis: Redis, user_key: str, current_sid: str | None) -> list[SessionInfo]:
    """The live sessions of one user, newest first; dead index entries are pruned as found."""
    current = _digest(current_sid) if current_sid else None
    found: list[SessionInfo] = []
    for raw_digest in redis.smembers(_user_index(user_key)):
        digest = raw_digest.decode() if isinstance(raw_digest, bytes) else raw_digest
        raw = redis.get(PREFIX + digest)
        if raw is None:
            redis.srem(_user_index(user_key), digest)
            continue
        record = json.loads(raw)
        if record.get("u") != user_key:
            continue
        found.append(SessionInfo(public_id(digest), record.get("c", 0), record.get("s", 0), record.get("ip", ""),
                                 record.get("ua", ""), digest == current))
    return sorted(found, key=lambda s: s.last_seen, reverse=True)


def end_user_sessions(redis: Redis, user_key: str, *, keep_sid: str | None = None,
                      only_public_id: str | None = None) -> int:
    """End a user's sessions (all, all but ``keep_sid``, or the one with ``only_public_id``); returns how many."""
    keep = _digest(keep_sid) if keep_sid else None
    ended = 0
    for raw_digest in redis.smembers(_user_index(user_key)):
        digest = raw_digest.decode() if isinstance(raw_digest, bytes) else raw_digest
        if digest == keep or (only_public_id is not None and public_id(digest) != only_public_id):
            continue
        ended += int(redis.delete(PREFIX + digest))
        redis.srem(_user_index(user_key), digest)
    return ended


def init_server_sessions(app: Flask, redis: Redis, idle_minutes: int, absolute_hours: int) -> None:
    app.session_interface = RedisSessionInterface(redis, idle_minutes * 60, absolute_hours * 3600)
