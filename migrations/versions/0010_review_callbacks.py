"""Review callbacks: per tenant, the hash of the secret token in its callback URL and the ConnectWise callbacks
registered for it; the one pre-tenant lookup (token hash -> tenant id, nothing else).

Revision ID: 0010
Revises: 0009
"""

from alembic import op

from migrations.rls import enable_tenant_rls, ensure_role, give_function_to, grant_dml

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# NOLOGIN role that owns the callback lookup; it may read the token hash and tenant id and nothing else.
HOOKS_ROLE = "bi_review_hooks"


def upgrade() -> None:
    ensure_role(HOOKS_ROLE)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {HOOKS_ROLE}")
    op.execute("""
        CREATE TABLE review_callbacks (
            tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
            site text NOT NULL,
            company_id varchar(64) NOT NULL,
            callback_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now()
        )""")
    enable_tenant_rls("review_callbacks")
    grant_dml("review_callbacks")
    op.execute(f"GRANT SELECT (tenant_id, token_hash) ON review_callbacks TO {HOOKS_ROLE}")
    op.execute(f"CREATE POLICY review_callback_lookup ON review_callbacks FOR SELECT TO {HOOKS_ROLE} USING (true)")

    # Pre-tenant path: a callback URL's token hash -> its tenant. Nothing else.
    op.execute("""
        CREATE FUNCTION bi_review_callback_tenant(p_token_hash bytea) RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, public AS $$
            SELECT c.tenant_id FROM public.review_callbacks c
            WHERE octet_length(p_token_hash) = 32 AND c.token_hash = p_token_hash $$""")
    give_function_to("bi_review_callback_tenant(bytea)", HOOKS_ROLE)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS bi_review_callback_tenant(bytea)")
    op.execute("DROP TABLE IF EXISTS review_callbacks")
