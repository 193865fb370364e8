"""Migrations upgrade an empty database and downgrade one step (as the owner, in a database of their own)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from alembic import command
from psycopg import sql

from app import dbadmin


@pytest.fixture()
def empty_database(migrated):  # type: ignore[no-untyped-def]
    owner = migrated.owner_url
    name = f"bi_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(owner.replace("/betterinvoice", "/postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = owner.rsplit("/", 1)[0] + "/" + name
    yield url
    with psycopg.connect(owner.replace("/betterinvoice", "/postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _tables(url: str) -> set[str]:
    """The public tables and indexes (a migration may add only an index, and its downgrade must remove it)."""
    with psycopg.connect(url) as conn:
        return ({r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'")}
                | {r[0] for r in conn.execute("select indexname from pg_indexes where schemaname = 'public'")})


def test_migrations_upgrade_an_empty_database_and_downgrade_one_step(empty_database):
    dbadmin.upgrade(empty_database)
    full = _tables(empty_database)
    assert {"tenants", "users", "tenant_settings", "audit_log", "connectwise_connections"} <= full
    command.downgrade(dbadmin.alembic_config(empty_database), "-1")
    after_down = _tables(empty_database)
    assert after_down < full and "tenants" in after_down
    dbadmin.upgrade(empty_database)
    assert _tables(empty_database) == full


def test_make_migrate_creates_the_app_role_with_its_grants(empty_database):
    role = f"bi_app_{uuid.uuid4().hex[:6]}"
    app_url = empty_database.replace("bi_owner:", f"{role}:", 1).split("@")[0].rsplit(":", 1)[0]
    app_url = f"{app_url}:pw-{role}@" + empty_database.split("@", 1)[1]
    dbadmin.upgrade(empty_database, app_url)
    with psycopg.connect(app_url) as conn:
        assert conn.execute("select current_user").fetchone()[0] == role
        assert conn.execute("select count(*) from tenants").fetchone()[0] == 0
        flags = conn.execute("select rolsuper, rolbypassrls from pg_roles where rolname = current_user").fetchone()
    assert flags == (False, False)


def test_upgrading_again_keeps_the_existing_app_role(migrated):
    """A second `make dev` or release step finds the app role already there and must not fail on it."""
    from app import dbadmin

    dbadmin.upgrade(migrated.owner_url, migrated.app_url)
    dbadmin.upgrade(migrated.owner_url, migrated.app_url)
