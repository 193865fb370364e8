"""Sign-in policy per workspace: require Google or Microsoft sign-in.

One row per tenant that has chosen a policy (no row: codes allowed). The pre-tenant membership lookup returns the
flag beside each membership, so the code job and the sign-in can honour it before a tenant is chosen. Adding a
column to a function's result needs DROP + CREATE (CREATE OR REPLACE cannot change a result type); the downgrade
restores 0003's function.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from migrations.rls import enable_tenant_rls, give_function_to, grant_dml

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SIGNIN_ROLE = "bi_signin"
SIGNATURE = "bi_user_memberships(text)"

WITH_POLICY = """
    CREATE FUNCTION bi_user_memberships(p_email text)
    RETURNS TABLE (tenant_id uuid, tenant_name text, user_id uuid, role text, require_sso boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        SELECT u.tenant_id, t.name::text, u.id, u.role::text, coalesce(p.require_sso, false)
        FROM public.users u JOIN public.tenants t ON t.id = u.tenant_id
        LEFT JOIN public.sign_in_policies p ON p.tenant_id = u.tenant_id
        WHERE lower(u.email) = lower(btrim(p_email)) AND u.active
        ORDER BY t.name, t.id
    $$"""

WITHOUT_POLICY = """
    CREATE FUNCTION bi_user_memberships(p_email text)
    RETURNS TABLE (tenant_id uuid, tenant_name text, user_id uuid, role text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        SELECT u.tenant_id, t.name::text, u.id, u.role::text
        FROM public.users u JOIN public.tenants t ON t.id = u.tenant_id
        WHERE lower(u.email) = lower(btrim(p_email)) AND u.active
        ORDER BY t.name, t.id
    $$"""


def _replace_function(ddl: str) -> None:
    # The function belongs to the sign-in role; dropping it needs that role's rights for the one statement.
    op.execute(f"GRANT {SIGNIN_ROLE} TO current_user")
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
    op.execute(f"REVOKE {SIGNIN_ROLE} FROM current_user")
    op.execute(ddl)
    give_function_to(SIGNATURE, SIGNIN_ROLE)


def upgrade() -> None:
    op.execute("""
        CREATE TABLE sign_in_policies (
            tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            require_sso boolean NOT NULL DEFAULT false,
            updated_by uuid REFERENCES users(id) ON DELETE SET NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    enable_tenant_rls("sign_in_policies")
    grant_dml("sign_in_policies", "SELECT, INSERT, UPDATE")
    op.execute(f"GRANT SELECT (tenant_id, require_sso) ON sign_in_policies TO {SIGNIN_ROLE}")
    op.execute(f"CREATE POLICY signin_reads ON sign_in_policies FOR SELECT TO {SIGNIN_ROLE} USING (true)")
    _replace_function(WITH_POLICY)


def downgrade() -> None:
    _replace_function(WITHOUT_POLICY)
    op.execute("DROP TABLE IF EXISTS sign_in_policies")
