"""Sign-in: SSO identities, support access grants, and the pre-tenant lookups sign-in needs.

Before a tenant is chosen, sign-in must find which tenants an email (or an SSO identity) belongs to. Those are the
only cross-tenant reads, each a SECURITY DEFINER function owned by the NOLOGIN role ``bi_signin``, which may read just
the columns they return.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from migrations.rls import enable_tenant_rls, ensure_role, give_function_to, grant_dml

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SIGNIN_ROLE = "bi_signin"

FUNCTIONS = {
    "bi_user_memberships(text)": """
        CREATE FUNCTION bi_user_memberships(p_email text)
        RETURNS TABLE (tenant_id uuid, tenant_name text, user_id uuid, role text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            SELECT u.tenant_id, t.name::text, u.id, u.role::text
            FROM public.users u JOIN public.tenants t ON t.id = u.tenant_id
            WHERE lower(u.email) = lower(btrim(p_email)) AND u.active
            ORDER BY t.name, t.id
        $$""",
    "bi_sso_identity_users(text, text, text)": """
        CREATE FUNCTION bi_sso_identity_users(p_issuer text, p_provider_tenant text, p_subject text)
        RETURNS TABLE (tenant_id uuid, tenant_name text, user_id uuid, role text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            SELECT u.tenant_id, t.name::text, u.id, u.role::text
            FROM public.sso_identities s
            JOIN public.users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id
            JOIN public.tenants t ON t.id = u.tenant_id
            WHERE s.issuer = p_issuer AND s.provider_tenant = coalesce(p_provider_tenant, '')
              AND s.subject = p_subject AND u.active
            ORDER BY t.name, t.id
        $$""",
    "bi_tenant_directory()": """
        CREATE FUNCTION bi_tenant_directory()
        RETURNS TABLE (tenant_id uuid, tenant_name text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            SELECT t.id, t.name::text FROM public.tenants t ORDER BY t.name, t.id
        $$""",
    "bi_support_grants_for(text)": """
        CREATE FUNCTION bi_support_grants_for(p_email text)
        RETURNS TABLE (grant_id uuid, tenant_id uuid, tenant_name text, status text, reason text, minutes integer,
                       requested_at timestamptz, expires_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            SELECT g.id, g.tenant_id, t.name::text, g.status::text, g.reason, g.minutes, g.requested_at, g.expires_at
            FROM public.support_grants g JOIN public.tenants t ON t.id = g.tenant_id
            WHERE g.staff_email = lower(btrim(p_email)) AND g.requested_at > now() - interval '7 days'
            ORDER BY g.requested_at DESC
            LIMIT 50
        $$""",
}


def upgrade() -> None:
    op.execute("""
        CREATE TABLE sso_identities (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            provider varchar(32) NOT NULL,
            issuer varchar(500) NOT NULL,
            provider_tenant varchar(100) NOT NULL DEFAULT '',
            subject varchar(255) NOT NULL,
            email varchar(320) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            last_used_at timestamptz
        )""")
    op.execute("CREATE UNIQUE INDEX sso_identities_key ON sso_identities (tenant_id, issuer, provider_tenant, subject)")
    op.execute("CREATE INDEX sso_identities_lookup ON sso_identities (issuer, provider_tenant, subject)")
    enable_tenant_rls("sso_identities")
    grant_dml("sso_identities")

    op.execute("""
        CREATE TABLE support_grants (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            staff_email varchar(320) NOT NULL,
            reason text NOT NULL CHECK (length(btrim(reason)) >= 10),
            minutes integer NOT NULL CHECK (minutes BETWEEN 5 AND 60),
            status varchar(16) NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'active', 'denied', 'ended')),
            requested_at timestamptz NOT NULL DEFAULT now(),
            decided_by uuid REFERENCES users(id) ON DELETE SET NULL,
            decided_at timestamptz,
            starts_at timestamptz,
            expires_at timestamptz,
            ended_at timestamptz,
            expiry_audited boolean NOT NULL DEFAULT false,
            CHECK (expires_at IS NULL OR expires_at <= starts_at + interval '60 minutes')
        )""")
    op.execute("CREATE INDEX support_grants_tenant_status ON support_grants (tenant_id, status)")
    op.execute("CREATE INDEX support_grants_staff ON support_grants (staff_email, requested_at)")
    enable_tenant_rls("support_grants")
    grant_dml("support_grants", "SELECT, INSERT, UPDATE")

    ensure_role(SIGNIN_ROLE)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {SIGNIN_ROLE}")
    op.execute(f"GRANT SELECT (id, name) ON tenants TO {SIGNIN_ROLE}")
    op.execute(f"GRANT SELECT (id, tenant_id, email, role, active) ON users TO {SIGNIN_ROLE}")
    op.execute(f"GRANT SELECT (tenant_id, user_id, issuer, provider_tenant, subject) ON sso_identities TO {SIGNIN_ROLE}")
    op.execute(f"""GRANT SELECT (id, tenant_id, staff_email, status, reason, minutes, requested_at, expires_at)
                   ON support_grants TO {SIGNIN_ROLE}""")
    for table in ("tenants", "users", "sso_identities", "support_grants"):
        op.execute(f"CREATE POLICY signin_reads ON {table} FOR SELECT TO {SIGNIN_ROLE} USING (true)")
    for signature, ddl in FUNCTIONS.items():
        op.execute(ddl)
        give_function_to(signature, SIGNIN_ROLE)


def downgrade() -> None:
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    for table in ("tenants", "users"):
        op.execute(f"DROP POLICY IF EXISTS signin_reads ON {table}")
    op.execute(f"REVOKE ALL ON tenants, users FROM {SIGNIN_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {SIGNIN_ROLE}")
    op.execute("DROP TABLE IF EXISTS support_grants")
    op.execute("DROP TABLE IF EXISTS sso_identities")

