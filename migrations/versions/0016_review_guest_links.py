"""Guest reviewer links: per-recipient links to one invoice's review (the token's SHA-256 only), the pre-tenant
lookup (token hash -> tenant id and link id, nothing else), guests as reviewers, the workspace's link lifetime, and
guests as audit actors.

A guest reviewer is kept on ``review_reviewers`` by a new ``guest_id`` (the link they were invited through) rather
than as a member-only row: a guest has no ConnectWise member and no user, and the reviewer list, the decision
outcome and the timeline already work on that table, so a guest is one more kind of reviewer, not a side list.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

from migrations.rls import enable_tenant_rls, ensure_role, give_function_to, grant_dml

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# NOLOGIN role that owns the guest link lookup; it may read the token hash, link id and tenant id and nothing else.
GUESTS_ROLE = "bi_review_guests"


def upgrade() -> None:
    ensure_role(GUESTS_ROLE)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {GUESTS_ROLE}")
    op.execute("""
        CREATE TABLE review_guest_links (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            invoice_id integer NOT NULL CHECK (invoice_id > 0),
            token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
            email_enc bytea NOT NULL,
            name_enc bytea NOT NULL,
            member_id integer,
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            last_used_at timestamptz,
            revoked_at timestamptz,
            revoked_by uuid
        )""")
    op.execute("CREATE INDEX review_guest_links_invoice ON review_guest_links (tenant_id, invoice_id, created_at)")
    enable_tenant_rls("review_guest_links")
    grant_dml("review_guest_links")
    op.execute(f"GRANT SELECT (id, tenant_id, token_hash) ON review_guest_links TO {GUESTS_ROLE}")
    op.execute(f"CREATE POLICY review_guest_link_lookup ON review_guest_links FOR SELECT TO {GUESTS_ROLE} "
               "USING (true)")

    # Pre-tenant path: a guest link's token hash -> its tenant and link. Whether the link still works (revoked,
    # expired) is read afterwards under the tenant, through RLS.
    op.execute("""
        CREATE FUNCTION bi_review_guest_link(p_token_hash bytea) RETURNS TABLE (tenant_id uuid, link_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, public AS $$
            SELECT g.tenant_id, g.id FROM public.review_guest_links g
            WHERE octet_length(p_token_hash) = 32 AND g.token_hash = p_token_hash $$""")
    give_function_to("bi_review_guest_link(bytea)", GUESTS_ROLE)

    op.execute("ALTER TABLE review_reviewers ADD COLUMN guest_id uuid REFERENCES review_guest_links(id) "
               "ON DELETE CASCADE")
    op.execute("ALTER TABLE review_reviewers DROP CONSTRAINT review_reviewers_check")
    op.execute("ALTER TABLE review_reviewers ADD CONSTRAINT review_reviewers_check "
               "CHECK (user_id IS NOT NULL OR member_id IS NOT NULL OR guest_id IS NOT NULL)")
    op.execute("CREATE UNIQUE INDEX review_reviewers_guest ON review_reviewers (tenant_id, invoice_id, guest_id) "
               "WHERE guest_id IS NOT NULL")

    op.execute("ALTER TABLE review_settings ADD COLUMN guest_link_days integer NOT NULL DEFAULT 14 "
               "CHECK (guest_link_days BETWEEN 1 AND 90)")

    op.execute("ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_type_check")
    op.execute("ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_type_check "
               "CHECK (actor_type IN ('user', 'system', 'support', 'guest'))")


def downgrade() -> None:
    # The audit log is append-only: guests' rows stay, and the narrower check binds only rows written from now on.
    op.execute("ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_type_check")
    op.execute("ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_type_check "
               "CHECK (actor_type IN ('user', 'system', 'support')) NOT VALID")
    op.execute("ALTER TABLE review_settings DROP COLUMN IF EXISTS guest_link_days")
    op.execute("DELETE FROM review_reviewers WHERE guest_id IS NOT NULL")
    op.execute("DROP INDEX IF EXISTS review_reviewers_guest")
    op.execute("ALTER TABLE review_reviewers DROP CONSTRAINT review_reviewers_check")
    op.execute("ALTER TABLE review_reviewers ADD CONSTRAINT review_reviewers_check "
               "CHECK (user_id IS NOT NULL OR member_id IS NOT NULL)")
    op.execute("ALTER TABLE review_reviewers DROP COLUMN IF EXISTS guest_id")
    op.execute("DROP FUNCTION IF EXISTS bi_review_guest_link(bytea)")
    op.execute("DROP TABLE IF EXISTS review_guest_links")
