"""DDL helpers shared by migrations: the tenant policy, grants to the app group role.

Every statement here is static text over table names that are constants in the migrations, never input.
"""

from __future__ import annotations

from alembic import op

APP_GROUP_ROLE = "bi_app"
TENANT_PREDICATE = "(select nullif(current_setting('app.tenant_id', true), '')::uuid)"


def enable_tenant_rls(table: str, column: str = "tenant_id") -> None:
    """ENABLE + FORCE RLS and a fail-closed policy with USING and WITH CHECK."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({column} = {TENANT_PREDICATE}) WITH CHECK ({column} = {TENANT_PREDICATE})"
    )


def grant_dml(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    op.execute(f"GRANT {privileges} ON {table} TO {APP_GROUP_ROLE}")


def ensure_role(name: str) -> None:
    """Create a NOLOGIN group role unless it exists (roles are cluster-wide)."""
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN "
        f"CREATE ROLE {name} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; END IF; END $$"
    )


def give_function_to(signature: str, role: str) -> None:
    """Make ``role`` own a SECURITY DEFINER function, without leaving the owner a member of it."""
    # ALTER OWNER needs the owner to be a member of the new role and that role to have CREATE on the
    # schema; both are granted for the one statement and taken back.
    # Privileges first: after the owner changes, we may no longer change them (the new owner's ACL carries them).
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_GROUP_ROLE}")
    op.execute(f"GRANT {role} TO current_user")
    op.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
    op.execute(f"ALTER FUNCTION {signature} OWNER TO {role}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
    op.execute(f"REVOKE {role} FROM current_user")
