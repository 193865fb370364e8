"""Branded invoices: branding settings, public links and their views; the public-link lookup and view retention.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from migrations.rls import APP_GROUP_ROLE, enable_tenant_rls, ensure_role, give_function_to, grant_dml

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# NOLOGIN role that owns the public-link lookup; it may read a few columns of public_links and nothing else.
LINKS_ROLE = "bi_public_links"
# Created in 0001; owns the retention functions.
RETENTION_ROLE = "bi_retention"


def upgrade() -> None:
    ensure_role(LINKS_ROLE)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {LINKS_ROLE}")

    op.execute("""
        CREATE TABLE branding_settings (
            tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            settings jsonb NOT NULL DEFAULT '{}'::jsonb,
            logo bytea CHECK (logo IS NULL OR octet_length(logo) <= 1048576),
            logo_mime varchar(32) CHECK (logo_mime IS NULL OR logo_mime IN ('image/png', 'image/jpeg')),
            logo_sha256 varchar(64),
            version integer NOT NULL DEFAULT 1,
            updated_by uuid REFERENCES users(id) ON DELETE SET NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    enable_tenant_rls("branding_settings")
    grant_dml("branding_settings", "SELECT, INSERT, UPDATE")

    op.execute("""
        CREATE TABLE public_links (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            invoice_id integer NOT NULL CHECK (invoice_id > 0),
            token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
            created_by uuid REFERENCES users(id) ON DELETE SET NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz,
            revoked_at timestamptz,
            revoked_by uuid REFERENCES users(id) ON DELETE SET NULL,
            last_viewed_at timestamptz,
            view_count integer NOT NULL DEFAULT 0
        )""")
    op.execute("CREATE INDEX public_links_tenant_invoice ON public_links (tenant_id, invoice_id)")
    enable_tenant_rls("public_links")
    # No DELETE: a link is revoked, never removed, so "who shared what, when" stays answerable.
    grant_dml("public_links", "SELECT, INSERT, UPDATE")
    op.execute(f"GRANT SELECT (id, tenant_id, invoice_id, token_hash, expires_at, revoked_at) "
               f"ON public_links TO {LINKS_ROLE}")
    op.execute(f"CREATE POLICY public_link_lookup ON public_links FOR SELECT TO {LINKS_ROLE} USING (true)")

    # Usage metadata only (no invoice content): one row per render. Append-only for the app; the retention
    # function is the only way rows leave, after 90 days.
    op.execute("""
        CREATE TABLE link_views (
            id bigserial PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            link_id uuid REFERENCES public_links(id) ON DELETE SET NULL,
            invoice_id integer NOT NULL,
            viewed_at timestamptz NOT NULL DEFAULT now(),
            total numeric(18, 4) NOT NULL,
            kind varchar(8) NOT NULL CHECK (kind IN ('page', 'pdf')),
            viewer varchar(8) NOT NULL CHECK (viewer IN ('client', 'staff'))
        )""")
    op.execute("CREATE INDEX link_views_tenant_viewed ON link_views (tenant_id, viewed_at)")
    op.execute("CREATE INDEX link_views_link ON link_views (link_id)")
    op.execute("CREATE INDEX link_views_viewed_at ON link_views (viewed_at)")
    enable_tenant_rls("link_views")
    grant_dml("link_views", "SELECT, INSERT")
    op.execute(f"GRANT USAGE ON SEQUENCE link_views_id_seq TO {APP_GROUP_ROLE}")
    op.execute(f"GRANT SELECT, DELETE ON link_views TO {RETENTION_ROLE}")
    op.execute(f"""CREATE POLICY retention_sees_expired ON link_views TO {RETENTION_ROLE}
                   USING (viewed_at < now() - interval '90 days')""")

    # Pre-tenant path: a public link's token hash -> its tenant, link, invoice and state. Nothing else.
    op.execute("""
        CREATE FUNCTION bi_public_link_lookup(p_token_hash bytea)
        RETURNS TABLE (tenant_id uuid, link_id uuid, invoice_id integer, status text)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, public AS $$
            SELECT l.tenant_id, l.id, l.invoice_id,
                   CASE WHEN l.revoked_at IS NOT NULL THEN 'revoked'
                        WHEN l.expires_at IS NOT NULL AND l.expires_at <= now() THEN 'expired'
                        ELSE 'active' END
            FROM public.public_links l
            WHERE octet_length(p_token_hash) = 32 AND l.token_hash = p_token_hash $$""")
    give_function_to("bi_public_link_lookup(bytea)", LINKS_ROLE)

    # Pre-tenant path: the retention job for link views; returns how many rows it removed.
    op.execute("""
        CREATE FUNCTION bi_link_views_purge_expired() RETURNS bigint LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog, public AS $$
            WITH gone AS (DELETE FROM public.link_views WHERE viewed_at < now() - interval '90 days' RETURNING 1)
            SELECT count(*) FROM gone $$""")
    give_function_to("bi_link_views_purge_expired()", RETENTION_ROLE)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS bi_link_views_purge_expired()")
    op.execute("DROP FUNCTION IF EXISTS bi_public_link_lookup(bytea)")
    op.execute("DROP TABLE IF EXISTS link_views")
    op.execute("DROP TABLE IF EXISTS public_links")
    op.execute("DROP TABLE IF EXISTS branding_settings")
