"""From the catalog: RLS forced on every tenant table, the app role's powers, the pre-tenant paths."""

from __future__ import annotations

from sqlalchemy import text

import app.models  # noqa: F401
from app.db import Base

# Tables that hold no customer data and need no tenant.
GLOBAL_TABLES = {"alembic_version"}
# The only SECURITY DEFINER functions: the pre-tenant paths. Adding one means adding it here, on purpose.
PRE_TENANT_FUNCTIONS = {"bi_tenant_ids", "bi_audit_purge_expired", "bi_user_memberships", "bi_sso_identity_users",
                        "bi_tenant_directory", "bi_support_grants_for",
                        "bi_public_link_lookup", "bi_link_views_purge_expired"}


def test_every_table_with_tenant_id_has_rls_enabled_and_forced(owner_engine):
    with owner_engine.connect() as conn:
        rows = conn.execute(text("""
            select c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   exists(select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id'
                          and not a.attisdropped) as has_tenant
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind in ('r', 'p')""")).all()
    assert rows, "no tables found"
    for name, enabled, forced, has_tenant in rows:
        if name in GLOBAL_TABLES:
            continue
        assert has_tenant or name == "tenants", f"{name} has no tenant_id and is not a known global table"
        assert enabled and forced, f"{name}: RLS enabled={enabled} forced={forced}"


def test_every_tenant_table_policy_has_using_and_with_check(owner_engine):
    with owner_engine.connect() as conn:
        rows = conn.execute(text("""
            select tablename, qual, with_check from pg_policies
            where schemaname = 'public' and policyname = 'tenant_isolation'""")).all()
        tables = {r[0] for r in conn.execute(text(
            "select tablename from pg_tables where schemaname = 'public'")).all()} - GLOBAL_TABLES
    assert {r[0] for r in rows} == tables
    for table, qual, check in rows:
        assert "current_setting('app.tenant_id'" in qual and "current_setting('app.tenant_id'" in check, table


def test_metadata_and_database_agree_on_the_tenant_tables(owner_engine):
    with owner_engine.connect() as conn:
        db_tables = {r[0] for r in conn.execute(text(
            "select tablename from pg_tables where schemaname = 'public'")).all()} - GLOBAL_TABLES
    assert set(Base.metadata.tables) == db_tables


def test_app_role_is_not_superuser_not_bypassrls_and_owns_nothing(app):
    with app.extensions["engine"].connect() as conn:
        role, superuser, bypass, createrole, createdb = conn.execute(text(
            "select rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles "
            "where rolname = current_user")).one()
        owned = conn.execute(text("""
            select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and pg_get_userbyid(c.relowner) = current_user""")).all()
        inherited_bypass = conn.execute(text("""
            select r.rolname from pg_roles r where (r.rolsuper or r.rolbypassrls)
            and pg_has_role(current_user, r.oid, 'USAGE')""")).all()
    assert (superuser, bypass, createrole, createdb) == (False, False, False, False), role
    assert owned == []
    assert inherited_bypass == []


def test_pre_tenant_paths_are_exactly_the_listed_functions(owner_engine):
    with owner_engine.connect() as conn:
        definers = conn.execute(text("""
            select p.proname, p.proconfig from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = 'public' and p.prosecdef""")).all()
    assert {name for name, _ in definers} == PRE_TENANT_FUNCTIONS
    for name, proconfig in definers:
        assert proconfig and any(c.startswith("search_path=") for c in proconfig), f"{name} has no fixed search_path"


def test_pre_tenant_functions_are_not_executable_by_public(owner_engine):
    with owner_engine.connect() as conn:
        rows = conn.execute(text("""
            select p.proname, has_function_privilege('public', p.oid, 'EXECUTE')
            from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = 'public' and p.prosecdef""")).all()
    assert all(not public for _, public in rows)


def test_tenant_ids_function_returns_ids_only(app, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    with app.extensions["engine"].connect() as conn:
        result = conn.execute(text("select * from bi_tenant_ids()"))
        assert list(result.keys()) == ["bi_tenant_ids"]
        ids = {row[0] for row in result}
    assert {a.id, b.id} <= ids


def test_no_password_or_card_column_exists_anywhere(owner_engine):
    """The Trust page: no passwords stored, no card data stored."""
    with owner_engine.connect() as conn:
        columns = conn.execute(text("""
            select table_name, column_name from information_schema.columns where table_schema = 'public'
        """)).all()
    forbidden = ("password", "passwd", "pwd", "card_number", "cardnumber", "pan", "cvv", "cvc", "card_exp")
    found = [(t, c) for t, c in columns if any(word == c.lower() or c.lower().startswith(word + "_")
                                                 or c.lower().endswith("_" + word) for word in forbidden)]
    assert found == []
