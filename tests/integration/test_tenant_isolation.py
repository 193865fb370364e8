"""Every tenant table, as the app role with raw SQL: no row of another tenant is visible or writable."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Table, insert, select, text, update
from sqlalchemy.exc import DBAPIError, ProgrammingError

import app.models  # noqa: F401
from app.db import Base, make_engine, make_session_factory, set_session_tenant
from tests.integration.rows import APPEND_ONLY_TABLES, DEFINER_WRITTEN_TABLES, sample_row

TENANT_TABLES = sorted((t for t in Base.metadata.tables.values() if "tenant_id" in t.c or t.name == "tenants"),
                       key=lambda t: t.name)


def tenant_column(table: Table):  # type: ignore[no-untyped-def]
    return table.c.id if table.name == "tenants" else table.c.tenant_id


@pytest.fixture()
def two_tenants(app, make_tenant, owner_engine):  # type: ignore[no-untyped-def]
    """Tenants A and B, each with a row in every tenant table (seeded as the app role, each tenant set)."""
    a, b = make_tenant("Tenant A"), make_tenant("Tenant B")
    for tenant in (a, b):
        session = app.extensions["session_factory"]()
        set_session_tenant(session, tenant.id)
        for table in TENANT_TABLES:
            row = sample_row(table, tenant.id, tenant.owner_id)
            if row is not None and table.name not in DEFINER_WRITTEN_TABLES:
                session.execute(insert(table).values(**row))
        session.commit()
        session.close()
        with owner_engine.begin() as conn:
            conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(tenant.id)})
            for table in TENANT_TABLES:
                if table.name in DEFINER_WRITTEN_TABLES:
                    conn.execute(insert(table).values(**sample_row(table, tenant.id, tenant.owner_id)))
    yield a, b
    # The sample rows carry placeholder bytes in encrypted columns; remove those rows so a later test that walks
    # every tenant's secrets (key rotation) never meets them.
    from app.security.rotation import registered_columns

    for tenant in (a, b):
        with owner_engine.begin() as conn:  # RLS is forced for the owner too: one tenant at a time
            conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(tenant.id)})
            for table_name in sorted({c.model.__tablename__ for c in registered_columns()}):
                table = Base.metadata.tables[table_name]
                conn.execute(table.delete().where(table.c.tenant_id == tenant.id))


def _rows(conn, table: Table, tenant) -> list:  # type: ignore[no-untyped-def]
    return conn.execute(select(table).where(tenant_column(table) == tenant)).all()


@pytest.mark.parametrize("table", TENANT_TABLES, ids=lambda t: t.name)
def test_other_tenants_rows_are_invisible(app, two_tenants, table):
    a, b = two_tenants
    session = app.extensions["session_factory"]()
    set_session_tenant(session, a.id)
    raw = session.execute(text(f"select * from {table.name}")).mappings().all()  # noqa: S608 (table from metadata)
    column = "id" if table.name == "tenants" else "tenant_id"
    assert raw, f"tenant A should see its own {table.name} rows"
    assert all(row[column] == a.id for row in raw)
    assert _rows(session, table, b.id) == []
    session.close()


@pytest.mark.parametrize("table", TENANT_TABLES, ids=lambda t: t.name)
def test_inserting_a_row_for_another_tenant_fails(app, two_tenants, table):
    a, b = two_tenants
    row = sample_row(table, b.id, b.owner_id, fresh=True)
    session = app.extensions["session_factory"]()
    set_session_tenant(session, a.id)
    with pytest.raises((ProgrammingError, DBAPIError)) as info:
        session.execute(insert(table).values(**row))
        session.flush()
    assert "row-level security" in str(info.value) or "permission denied" in str(info.value)
    session.rollback()
    session.close()


@pytest.mark.parametrize("table", TENANT_TABLES, ids=lambda t: t.name)
def test_updating_another_tenants_rows_changes_nothing_and_moving_a_row_fails(app, two_tenants, table):
    a, b = two_tenants
    session = app.extensions["session_factory"]()
    set_session_tenant(session, a.id)
    col = tenant_column(table)
    if table.name in APPEND_ONLY_TABLES:
        with pytest.raises(DBAPIError):
            session.execute(update(table).where(col == b.id).values({col.key: col}))
        session.rollback()
        session.close()
        return
    result = session.execute(update(table).where(col == b.id).values({col.key: col}))
    assert result.rowcount == 0
    if table.name != "tenants":
        with pytest.raises(DBAPIError) as info:
            session.execute(update(table).where(col == a.id).values({col.key: b.id}))
        assert "row-level security" in str(info.value)
    session.rollback()
    session.close()


@pytest.mark.parametrize("table", TENANT_TABLES, ids=lambda t: t.name)
def test_with_no_tenant_nothing_is_visible(app, two_tenants, table):
    with app.extensions["engine"].connect() as conn:
        count = conn.execute(text(f"select count(*) from {table.name}")).scalar()  # noqa: S608
    assert count == 0


@pytest.mark.parametrize("table", TENANT_TABLES, ids=lambda t: t.name)
def test_a_pooled_connection_reused_by_the_next_request_carries_no_tenant(app, two_tenants, table):
    a, _b = two_tenants
    # A pool of one, so the next unit of work is certain to get the same connection back.
    engine = make_engine(app.config["BI"].DATABASE_URL, pool_size=1, max_overflow=0)
    session = make_session_factory(engine)()
    set_session_tenant(session, a.id)
    first_pid = session.execute(text("select pg_backend_pid()")).scalar()
    assert session.execute(text(f"select count(*) from {table.name}")).scalar() > 0  # noqa: S608
    session.commit()
    session.close()
    # The next unit of work gets the same pooled connection and sets no tenant.
    with engine.connect() as conn:
        assert conn.execute(text("select pg_backend_pid()")).scalar() == first_pid
        assert conn.execute(text("select current_setting('app.tenant_id', true)")).scalar() in ("", None)
        assert conn.execute(text(f"select count(*) from {table.name}")).scalar() == 0  # noqa: S608
    engine.dispose()


@pytest.mark.parametrize("table", TENANT_TABLES, ids=lambda t: t.name)
def test_setting_the_tenant_after_an_earlier_query_in_the_same_transaction_still_applies(app, two_tenants, table):
    a, _b = two_tenants
    session = app.extensions["session_factory"]()
    assert session.execute(text(f"select count(*) from {table.name}")).scalar() == 0  # noqa: S608
    assert session.in_transaction()
    set_session_tenant(session, a.id)
    assert session.execute(text(f"select count(*) from {table.name}")).scalar() > 0  # noqa: S608
    session.close()


def test_tenant_ids_are_validated_before_reaching_the_database(app):
    session = app.extensions["session_factory"]()
    with pytest.raises(ValueError):
        set_session_tenant(session, "x' or 1=1 --")
    session.close()
    assert uuid.UUID(str(uuid.uuid4()))
