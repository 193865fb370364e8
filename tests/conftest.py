"""Test harness: private PostgreSQL and Redis on free loopback ports in a temporary folder (or the servers
named by DATABASE_OWNER_URL / DATABASE_URL / REDIS_URL), migrated once, the app connected as the app role."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

pytest_plugins = ["tests.oidc_fixtures", "tests.billing_stripe"]

TEST_KEYS = "k2:" + base64.b64encode(b"\x22" * 32).decode() + ",k1:" + base64.b64encode(b"\x11" * 32).decode()
# Not the development default, so tests that switch a copy of the config to production can start it.
TEST_CHAIN_KEYS = "c1:" + base64.b64encode(b"\x33" * 32).decode()


@dataclass
class Servers:
    owner_url: str
    app_url: str
    redis_url: str
    stack: object | None = None


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    external = all(os.environ.get(k) for k in ("DATABASE_OWNER_URL", "DATABASE_URL", "REDIS_URL"))
    if external:
        yield Servers(os.environ["DATABASE_OWNER_URL"], os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
        return
    from devtools.services import start_stack

    root = Path(tempfile.mkdtemp(prefix="bi-test-"))
    stack = start_stack(root)
    try:
        yield Servers(stack.owner_url, stack.app_url, stack.redis.url, stack)
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated(servers: Servers) -> Servers:
    from app import dbadmin

    dbadmin.upgrade(servers.owner_url, servers.app_url)
    return servers


@pytest.fixture(scope="session")
def config(migrated: Servers):  # type: ignore[no-untyped-def]
    from app.config import Config

    return Config(APP_ENV="test", DATABASE_URL=migrated.app_url, REDIS_URL=migrated.redis_url,
                  SECRET_KEY="test-secret-key-" + "x" * 32, ENCRYPTION_KEYS=TEST_KEYS, AUDIT_CHAIN_KEYS=TEST_CHAIN_KEYS,
                  CONNECTWISE_CLIENT_ID="6f1b5c9e-0000-4000-8000-000000000001", LOG_FORMAT="text")


@pytest.fixture(scope="session")
def app(config):  # type: ignore[no-untyped-def]
    from app import create_app

    application = create_app(config)
    yield application
    application.extensions["engine"].dispose()


@pytest.fixture(autouse=True)
def _fresh_rate_limits(request):  # type: ignore[no-untyped-def]
    """Each test starts with no rate-limit counters (the suite itself would otherwise trip the sign-in limits)."""
    if "app" in request.fixturenames:
        from app.security.limits import reset_limits

        request.getfixturevalue("app")
        reset_limits()


@pytest.fixture()
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture(scope="session")
def owner_engine(migrated: Servers):  # type: ignore[no-untyped-def]
    from app.db import normalise_url

    engine = create_engine(normalise_url(migrated.owner_url))
    yield engine
    engine.dispose()


@pytest.fixture()
def redis_conn(app):  # type: ignore[no-untyped-def]
    conn = app.extensions["redis"]
    conn.flushdb()
    return conn


@dataclass
class TenantInfo:
    id: uuid.UUID
    owner_id: uuid.UUID
    owner_email: str


@pytest.fixture()
def make_tenant(app):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from app.tenants.service import create_tenant
    from app.users.models import User

    def _make(name: str = "Acme IT", email: str | None = None) -> TenantInfo:
        email = email or f"owner-{uuid.uuid4().hex[:8]}@example.com"
        session = app.extensions["session_factory"]()
        try:
            tenant = create_tenant(session, name, email, "Olive Owner")
            owner = session.execute(select(User).where(User.tenant_id == tenant.id)).scalar_one()
            session.commit()
            return TenantInfo(tenant.id, owner.id, email)
        finally:
            session.close()

    return _make


def sign_in(client, tenant: TenantInfo, user_id: uuid.UUID | None = None) -> None:  # type: ignore[no-untyped-def]
    """Put a signed-in user in the test client's session (what the sign-in flow does)."""
    with client.session_transaction() as sess:
        sess["_user_id"] = f"{tenant.id}:{user_id or tenant.owner_id}"
        sess["_fresh"] = True


def csrf_of(client) -> str:  # type: ignore[no-untyped-def]
    """The session's CSRF token, as the page would carry it."""
    client.get("/healthz")
    with client.session_transaction() as sess:
        if "_csrf" not in sess:
            sess["_csrf"] = "t-" + uuid.uuid4().hex
        return sess["_csrf"]


def app_conn(app):  # type: ignore[no-untyped-def]
    """A raw connection as the app role."""
    return app.extensions["engine"].connect()


__all__ = ["TenantInfo", "app_conn", "csrf_of", "sign_in", "text"]
