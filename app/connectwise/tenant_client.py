"""The one way to make a tenant's ConnectWise client, tuned per caller (pages fail fast, jobs may retry longer).

Used by every caller that talks to a tenant's ConnectWise: the invoices pipeline and pages, member sync, the
connection settings page's test and the CLI.

Its clients record each call's outcome as the connection's state (``app.connectwise.health``).

Two per-instance costs of the client matter to a page that makes one client per request, and both are paid once
here instead: the API base discovery (one unauthenticated round trip, which would be a third sequential trip on
every public render) is remembered per tenant and site in Redis for an hour; and the TLS context (loading the CA
bundle, ~40 ms) is built once per process and shared by every client's transport.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import threading
import time
from typing import Any

import httpx
from sqlalchemy.orm import Session

from app.config import Config
from app.connectwise.client import Client
from app.connectwise.connection import get_connection, make_client
from app.security.crypto import Keyring

log = logging.getLogger(__name__)
API_BASE_TTL_SECONDS = 3600
# Pages: one retry, short waits (a person is waiting; a Retry-After of a minute becomes a 503 page instead).
PAGE_OPTIONS: dict[str, Any] = {"max_retries": 1, "backoff_base": 0.2, "max_backoff": 1.0, "concurrency": 8}
PAGE_MAX_SLEEP = 2.0


class NotConnected(Exception):
    """The tenant has no ConnectWise connection."""


_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi CAs), built once; SSLContext is safe to share across threads."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = httpx.create_ssl_context()
        return _ssl_context


def _capped_sleep(seconds: float) -> None:
    time.sleep(min(seconds, PAGE_MAX_SLEEP))


def _base_key(tenant_id: str, site: str, company_id: str) -> str:
    digest = hashlib.sha256(f"{site}|{company_id}".encode()).hexdigest()[:24]
    return f"bi:cw:apibase:{tenant_id}:{digest}"


def tenant_client(session: Session, keyring: Keyring, config: Config, redis: Any, *, for_page: bool = True,
                  **options: Any) -> Client:
    """A client for the session's tenant; raises NotConnected. Use it as a context manager."""
    conn = get_connection(session)
    if conn is None:
        raise NotConnected()
    kwargs: dict[str, Any] = {**PAGE_OPTIONS, "sleep": _capped_sleep} if for_page else {}
    kwargs.update(options)
    # The client builds its own transport (it dials only vetted addresses); it shares the process's TLS context.
    kwargs.setdefault("verify", shared_ssl_context())
    # Every call of the tenant's own connection is its connection state (keys it had before are not: client_for).
    kwargs.setdefault("note_health", True)
    client = make_client(conn, keyring, config, redis, for_job=not for_page, **kwargs)
    key = _base_key(str(conn.tenant_id), client.site, client.company_id)
    cached = _redis_get(redis, key)
    if cached:
        # Same tenant, same site and company id: the discovery answer cannot differ.
        client.use_known_api_base(cached)
    else:
        try:
            base = client.api_base
        except Exception:
            client.close()
            raise
        _redis_set(redis, key, base)
    return client


def _redis_get(redis: Any, key: str) -> str | None:
    if redis is None:
        return None
    try:
        raw = redis.get(key)
    except Exception:  # a cache outage only costs a round trip
        return None
    return raw.decode() if isinstance(raw, bytes) else raw


def _redis_set(redis: Any, key: str, value: str) -> None:
    if redis is None:
        return
    try:
        redis.set(key, value, ex=API_BASE_TTL_SECONDS)
    except Exception:
        log.warning("could not remember the ConnectWise API base")
