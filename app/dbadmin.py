"""Schema upkeep as the owner: run Alembic, and make sure the app login role exists with its grants."""

from __future__ import annotations

from pathlib import Path
from typing import Any, LiteralString
from urllib.parse import unquote, urlsplit

import psycopg
from alembic import command
from alembic.config import Config as AlembicConfig
from psycopg import sql

from app.db import normalise_url

ROOT = Path(__file__).resolve().parent.parent
APP_GROUP_ROLE = "bi_app"
SUGGESTED_LOGIN_ROLE = "bi_web"


def alembic_config(owner_url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("prepend_sys_path", str(ROOT))
    cfg.set_main_option("path_separator", "os")  # the project folder may hold spaces or colons
    cfg.attributes["owner_url"] = owner_url
    return cfg


def _libpq_url(url: str) -> str:
    return normalise_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


def _value(conn: psycopg.Connection, query: LiteralString, params: tuple[Any, ...] = ()) -> Any:
    """The one value of a query that always returns one row."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise SystemExit(f"the database returned no row for: {query}")
    return row[0]


def ensure_app_role(owner_url: str, app_url: str) -> str:
    """Create the login role named in ``app_url`` (or fix its attributes) and put it in the app group."""
    parts = urlsplit(_libpq_url(app_url))
    role = unquote(parts.username or "")
    password = unquote(parts.password or "")
    if not role:
        raise SystemExit("DATABASE_URL: must name the app role (postgresql://ROLE:PASSWORD@host/db)")
    with psycopg.connect(_libpq_url(owner_url), autocommit=True) as conn:
        owner = _value(conn, "select current_user")
        if role == owner:
            raise SystemExit("DATABASE_URL: the app role must not be the owner role of DATABASE_OWNER_URL")
        _refuse_schema_role(conn, role)
        found = conn.execute("select rolsuper, rolbypassrls, rolcreatedb, rolcreaterole from pg_roles "
                             "where rolname = %s", (role,)).fetchone()
        if found is None:
            stmt = sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE").format(
                sql.Identifier(role))
        else:
            # PostgreSQL lets only a BYPASSRLS role name that attribute in ALTER ROLE, even to turn it off; so an
            # existing role is checked instead, and only its login and password are (re)set.
            if any(found):
                raise SystemExit(f"DATABASE_URL: role {role} must not be superuser, BYPASSRLS, CREATEDB or "
                                 f"CREATEROLE; fix it as a superuser")
            stmt = sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role))
        if password:
            stmt = stmt + sql.SQL(" PASSWORD {}").format(sql.Literal(password))
        conn.execute(stmt)
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_GROUP_ROLE), sql.Identifier(role)))
        dbname = _value(conn, "select current_database()")
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(dbname), sql.Identifier(role)))
    return role


def _refuse_schema_role(conn: psycopg.Connection, role: str) -> None:
    """The schema's own roles (the app group, the owners of the narrow definer functions) never log in."""
    use_instead = (f"name a login role of your own instead, for example {SUGGESTED_LOGIN_ROLE}: make migrate "
                   f"creates it and makes it a member of {APP_GROUP_ROLE}")
    if role == APP_GROUP_ROLE:
        raise SystemExit(f"DATABASE_URL: {role} is the group role that holds the app's grants and never logs in; "
                         f"{use_instead}")
    owns = _value(conn, "select exists (select 1 from pg_shdepend d join pg_roles r on r.oid = d.refobjid "
                        "where r.rolname = %s and d.deptype = 'o')", (role,))
    if owns:
        raise SystemExit(f"DATABASE_URL: {role} owns database objects (it is one of the schema's own roles, or "
                         f"another owner) and must not be the app's login; {use_instead}")


def ensure_group_role(owner_url: str) -> None:
    """The app group role must exist before the login role can join it (migration 0001 also creates it)."""
    with psycopg.connect(_libpq_url(owner_url), autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (APP_GROUP_ROLE,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER NOBYPASSRLS").format(
                sql.Identifier(APP_GROUP_ROLE)))


def upgrade(owner_url: str, app_url: str | None = None, revision: str = "head") -> None:
    """Bring the schema to ``revision`` as owner, then ensure the app role."""
    command.upgrade(alembic_config(owner_url), revision)
    if app_url:
        ensure_group_role(owner_url)
        ensure_app_role(owner_url, app_url)


def downgrade(owner_url: str, revision: str) -> None:
    command.downgrade(alembic_config(owner_url), revision)
