"""Web and worker check their own database role at start and refuse one that could bypass row-level security."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from app.config import ConfigError
from app.db import make_engine
from app.dbcheck import check_app_role
from tests.conftest import TEST_KEYS

ROOT = Path(__file__).resolve().parents[2]


def _superuser_url(servers) -> str:  # type: ignore[no-untyped-def]
    if servers.stack is None:
        pytest.skip("external servers: no superuser credentials to make hostile roles with")
    pg = servers.stack.postgres
    return pg.url("postgres", pg.superuser_password)


def _role_url(base_url: str, role: str, password: str) -> str:
    rest = base_url.split("@", 1)[1]
    return f"postgresql://{role}:{password}@{rest}"


@pytest.fixture()
def hostile_role(migrated):  # type: ignore[no-untyped-def]
    """Make a login role with the given attributes (as a superuser would), dropped afterwards."""
    admin = _superuser_url(migrated)
    made: list[str] = []

    def _make(attributes: str, member_of: str | None = None) -> str:
        role, password = f"bi_probe_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} " + attributes).format(
                sql.Identifier(role), sql.Literal(password)))
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE betterinvoice TO {}").format(sql.Identifier(role)))
            if member_of:
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(member_of), sql.Identifier(role)))
        made.append(role)
        return _role_url(migrated.app_url, role, password)

    yield _make
    with psycopg.connect(admin, autocommit=True) as conn:
        for role in made:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _problems_of(url: str) -> str:
    engine = make_engine(url)
    try:
        with pytest.raises(ConfigError) as caught:
            check_app_role(engine)
        return str(caught.value)
    finally:
        engine.dispose()


def test_the_app_role_passes_the_check(migrated):
    engine = make_engine(migrated.app_url)
    try:
        check_app_role(engine)
    finally:
        engine.dispose()


def test_the_owner_role_is_refused_because_it_owns_tables(migrated):
    message = _problems_of(migrated.owner_url)
    assert "DATABASE_URL" in message and "owns tables" in message and "audit_log" in message


def test_a_superuser_is_refused(migrated):
    assert "superuser" in _problems_of(_superuser_url(migrated))


def test_a_bypassrls_role_is_refused(hostile_role):
    assert "BYPASSRLS" in _problems_of(hostile_role("NOSUPERUSER BYPASSRLS"))


def test_a_role_that_can_become_the_owner_is_refused(hostile_role):
    message = _problems_of(hostile_role("NOSUPERUSER NOBYPASSRLS NOINHERIT", member_of="bi_owner"))
    assert "bi_owner" in message and "owns" in message


def _env(url: str, redis_url: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "APP_ENV": "test", "DATABASE_URL": url, "REDIS_URL": redis_url,
            "SECRET_KEY": "role-check-secret-" + "r" * 32, "ENCRYPTION_KEYS": TEST_KEYS,
            "CONNECTWISE_CLIENT_ID": "6f1b5c9e-0000-4000-8000-000000000001", "LOG_FORMAT": "text"}


@pytest.mark.parametrize("command", [["-c", "import wsgi"], ["worker.py", "--burst"]], ids=["web", "worker"])
def test_web_and_worker_refuse_to_start_as_the_owner_naming_the_problem(migrated, command):
    result = subprocess.run([sys.executable, *command], cwd=ROOT, env=_env(migrated.owner_url, migrated.redis_url),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr and "owns" in result.stderr
    assert migrated.owner_url.split("@")[0].rsplit(":", 1)[1] not in result.stderr  # no password printed


def test_the_worker_starts_as_the_app_role(migrated):
    result = subprocess.run([sys.executable, "worker.py", "--burst"], cwd=ROOT,
                            env=_env(migrated.app_url, migrated.redis_url), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_release_command_runs_before_the_app_role_exists(migrated):
    """`flask --app wsgi db upgrade` is what creates the app role, so the start-up check must not stop it."""
    unborn = _role_url(migrated.app_url, f"bi_unborn_{uuid.uuid4().hex[:6]}", "pw")
    env = {**_env(unborn, migrated.redis_url), "DATABASE_OWNER_URL": migrated.owner_url}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "--help"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "db" in result.stdout
