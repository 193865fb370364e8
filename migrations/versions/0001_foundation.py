"""Foundation: tenants, tenant settings, users, audit log; RLS, grants and the narrow definer functions.

Revision ID: 0001
Revises:
"""

from alembic import op

from migrations.rls import APP_GROUP_ROLE, enable_tenant_rls, ensure_role, give_function_to, grant_dml

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# NOLOGIN roles that own the narrow SECURITY DEFINER functions; each has its own tight policy.
DIRECTORY_ROLE = "bi_directory"
RETENTION_ROLE = "bi_retention"


def upgrade() -> None:
    for role in (APP_GROUP_ROLE, DIRECTORY_ROLE, RETENTION_ROLE):
        ensure_role(role)
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_GROUP_ROLE}, {DIRECTORY_ROLE}, {RETENTION_ROLE}")

    op.execute("""
        CREATE TABLE tenants (
            id uuid PRIMARY KEY,
            name varchar(200) NOT NULL CHECK (length(btrim(name)) > 0),
            created_at timestamptz NOT NULL DEFAULT now()
        )""")
    enable_tenant_rls("tenants", column="id")
    grant_dml("tenants", "SELECT, INSERT, UPDATE")
    op.execute(f"GRANT SELECT (id) ON tenants TO {DIRECTORY_ROLE}")
    op.execute(f"CREATE POLICY directory_reads_ids ON tenants FOR SELECT TO {DIRECTORY_ROLE} USING (true)")

    op.execute("""
        CREATE TABLE tenant_settings (
            tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            review_storage_enabled boolean NOT NULL DEFAULT true,
            support_access_requires_approval boolean NOT NULL DEFAULT true,
            timezone varchar(64) NOT NULL DEFAULT 'UTC',
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    enable_tenant_rls("tenant_settings")
    grant_dml("tenant_settings")

    op.execute("""
        CREATE TABLE users (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            email varchar(320) NOT NULL CHECK (position('@' in email) > 1),
            name varchar(200) NOT NULL DEFAULT '',
            role varchar(32) NOT NULL DEFAULT 'viewer'
                CHECK (role IN ('owner', 'admin', 'billing_manager', 'reviewer', 'viewer')),
            active boolean NOT NULL DEFAULT true,
            cw_member_id integer,
            cw_identifier varchar(64),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email))")
    op.execute("CREATE UNIQUE INDEX users_tenant_cw_member_key ON users (tenant_id, cw_member_id)")
    enable_tenant_rls("users")
    grant_dml("users")

    op.execute("""
        CREATE TABLE audit_log (
            id bigserial PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            created_at timestamptz NOT NULL,
            actor_type varchar(16) NOT NULL CHECK (actor_type IN ('user', 'system', 'support')),
            actor_id varchar(64),
            actor_label varchar(320) NOT NULL DEFAULT '',
            action varchar(100) NOT NULL,
            target_type varchar(64) NOT NULL DEFAULT '',
            target_id varchar(100) NOT NULL DEFAULT '',
            before jsonb,
            after jsonb,
            source_ip varchar(64),
            user_agent text,
            request_id varchar(64),
            prev_hash varchar(64) NOT NULL,
            hash varchar(64) NOT NULL
        )""")
    op.execute("CREATE INDEX audit_log_tenant_id_id ON audit_log (tenant_id, id)")
    op.execute("CREATE INDEX audit_log_created_at ON audit_log (created_at)")
    enable_tenant_rls("audit_log")
    grant_dml("audit_log", "SELECT, INSERT")
    op.execute(f"GRANT USAGE ON SEQUENCE audit_log_id_seq TO {APP_GROUP_ROLE}")
    op.execute(f"GRANT SELECT, DELETE ON audit_log TO {RETENTION_ROLE}")
    op.execute(f"""CREATE POLICY retention_sees_expired ON audit_log TO {RETENTION_ROLE}
                   USING (created_at < now() - interval '90 days')""")

    # Append-only: no UPDATE, DELETE or TRUNCATE for anyone, the owner included; only the retention
    # function (running as bi_retention) may delete rows, and only rows past 90 days.
    op.execute(f"""
        CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql
        SET search_path = pg_catalog, public AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND current_user = '{RETENTION_ROLE}'
               AND OLD.created_at < now() - interval '90 days' THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$""")
    op.execute("""CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
                  FOR EACH ROW EXECUTE FUNCTION audit_log_guard()""")
    op.execute("""CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
                  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard()""")

    # Pre-tenant path: tenant ids only (no names, no data), for fan-out jobs and maintenance commands.
    op.execute("""
        CREATE FUNCTION bi_tenant_ids() RETURNS SETOF uuid LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, public AS $$ SELECT id FROM public.tenants ORDER BY id $$""")
    give_function_to("bi_tenant_ids()", DIRECTORY_ROLE)

    # Pre-tenant path: the retention job; returns how many rows it removed.
    op.execute("""
        CREATE FUNCTION bi_audit_purge_expired() RETURNS bigint LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, public AS $$
            WITH gone AS (DELETE FROM public.audit_log WHERE created_at < now() - interval '90 days' RETURNING 1)
            SELECT count(*) FROM gone $$""")
    give_function_to("bi_audit_purge_expired()", RETENTION_ROLE)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS bi_audit_purge_expired()")
    op.execute("DROP FUNCTION IF EXISTS bi_tenant_ids()")
    op.execute("DROP TABLE IF EXISTS audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_guard()")
    op.execute("DROP TABLE IF EXISTS users")
    op.execute("DROP TABLE IF EXISTS tenant_settings")
    op.execute("DROP TABLE IF EXISTS tenants")
