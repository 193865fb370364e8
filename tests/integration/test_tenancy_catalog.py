"""From the catalog: RLS forced on every tenant table, the app role's powers, the pre-tenant paths."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import app.models  # noqa: F401
from app.db import Base, Global, TenantScoped

# Tables that hold no customer data and need no tenant.
GLOBAL_TABLES = {"alembic_version"}
# The only SECURITY DEFINER functions: the pre-tenant paths. Adding one means adding it here, on purpose.
PRE_TENANT_FUNCTIONS = {"bi_tenant_ids", "bi_audit_purge_expired", "bi_user_memberships", "bi_sso_identity_users",
                        "bi_tenant_directory", "bi_support_grants_for",
                        "bi_public_link_lookup", "bi_link_views_purge_expired",
                        "bi_review_callback_tenant",
                        "bi_review_guest_link", "bi_invoice_send_tenant",
                        "bi_billing_customer_tenant"}


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
    forbidden = ("password", "passwd", "pwd", "card_number", "cardnumber", "pan", "cvv", "cvc", "card_exp",
                 # issue 15: Stripe holds the cards; nothing of a card or bank account is ours to keep
                 "card", "cards", "cvc2", "exp_month", "exp_year", "security_code", "iban", "bic",
                 "account_number", "routing_number", "sort_code", "last4", "fingerprint", "payment_method")
    found = [(t, c) for t, c in columns if any(word == c.lower() or c.lower().startswith(word + "_")
                                                 or c.lower().endswith("_" + word) for word in forbidden)]
    assert found == []


def _unclassified(base: type[DeclarativeBase]) -> list[str]:
    """Mapped models that are not exactly one of TenantScoped and Global, or whose mark does not fit the table."""
    problems = []
    for mapper in base.registry.mappers:
        cls, columns = mapper.class_, mapper.local_table.columns
        scoped, global_ = issubclass(cls, TenantScoped), issubclass(cls, Global)
        if scoped == global_:
            problems.append(f"{cls.__name__}: neither TenantScoped nor Global" if not scoped
                            else f"{cls.__name__}: both TenantScoped and Global")
        elif global_ and ("tenant_id" in columns or not cls.__global_reason__):
            problems.append(f"{cls.__name__}: Global with a tenant_id or without a reason")
    return problems


def test_every_model_is_tenant_scoped_or_marked_global():
    assert _unclassified(Base) == []


def test_a_new_model_that_is_neither_tenant_scoped_nor_global_is_caught():
    class Scratch(DeclarativeBase):
        pass

    class Unmarked(Scratch):
        __tablename__ = "unmarked"
        id: Mapped[int] = mapped_column(primary_key=True)

    class Notes(TenantScoped, Scratch):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)

    class Careless(Global, Scratch):
        __tablename__ = "careless"
        id: Mapped[int] = mapped_column(primary_key=True)

    assert sorted(_unclassified(Scratch)) == ["Careless: Global with a tenant_id or without a reason",
                                              "Unmarked: neither TenantScoped nor Global"]
    assert "tenant_id" in Notes.__table__.columns


def test_every_tenant_scoped_table_is_forced_rls_with_the_tenant_policy(owner_engine):
    scoped = {m.local_table.name for m in Base.registry.mappers if issubclass(m.class_, TenantScoped)}
    with owner_engine.connect() as conn:
        rows = {r.relname: r for r in conn.execute(text("""
            select c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   exists(select 1 from pg_policies p where p.schemaname = 'public' and p.tablename = c.relname
                          and p.policyname = 'tenant_isolation') as has_policy
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind in ('r', 'p')""")).all()}
    assert scoped and scoped <= set(rows)
    for name in scoped:
        assert rows[name].relrowsecurity and rows[name].relforcerowsecurity and rows[name].has_policy, name


def test_tenant_id_is_declared_only_by_the_mixin():
    app_dir = Path(__file__).resolve().parents[2] / "app"
    by_hand = re.compile(r"^\s+tenant_id\s*:\s*Mapped\b", re.MULTILINE)
    assert [str(p) for p in app_dir.rglob("*.py") if by_hand.search(p.read_text())] == []


def test_the_mixin_declares_tenant_id_exactly_as_the_database_has_it(owner_engine):
    scoped = [m for m in Base.registry.mappers if issubclass(m.class_, TenantScoped)]
    with owner_engine.connect() as conn:
        for mapper in scoped:
            table, column = mapper.local_table.name, mapper.local_table.columns["tenant_id"]
            data_type, nullable = conn.execute(text(
                "select data_type, is_nullable from information_schema.columns "
                "where table_schema = 'public' and table_name = :t and column_name = 'tenant_id'"),
                {"t": table}).one()
            constraints = {(r.contype, r.target, r.ondelete) for r in conn.execute(text("""
                select con.contype, case when con.confrelid = 0 then '' else con.confrelid::regclass::text end as target,
                       con.confdeltype as ondelete
                from pg_constraint con join pg_class c on c.oid = con.conrelid
                where c.relname = :t and con.conkey = array[(select attnum from pg_attribute
                      where attrelid = c.oid and attname = 'tenant_id')]::smallint[]"""), {"t": table})}
            assert (data_type, nullable) == ("uuid", "NO"), table
            assert ("f", "tenants", "c") in constraints, table  # FK to tenants, ON DELETE CASCADE
            assert (("p", "", " ") in constraints) == bool(column.primary_key), table
            assert (("u", "", " ") in constraints) == bool(column.unique), table


def test_metadata_and_database_agree_on_every_column(owner_engine):
    """What alembic's autogenerate would see: no column added, dropped, retyped or made nullable, and no
    difference in a tenant_id foreign key (index differences of hand-written migrations aside)."""
    with owner_engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    flat = [d for diff in diffs for d in (diff if isinstance(diff, list) else [diff])]
    column_level = [d for d in flat if d[0] in ("add_column", "remove_column") or d[0].startswith("modify_")]
    tenant_fks = [d for d in flat if d[0] in ("add_fk", "remove_fk")
                  and any(c.name == "tenant_id" for c in d[1].columns)]
    assert column_level == [] and tenant_fks == []
