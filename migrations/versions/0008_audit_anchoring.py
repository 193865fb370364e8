"""Audit log anchoring: keyed chain and the recorded retention boundary.

Rows get ``seq`` (their place in the tenant's chain) and ``key_id`` (the HMAC key that signed them). Rows already
written stay as they are, ``seq`` and ``key_id`` NULL: re-signing them here is impossible (the key is not in the
database, on purpose) and rewriting them would be exactly what the log forbids. The verifier accepts such unkeyed
rows only before a tenant's first keyed row; retention ages them out within 90 days.

The retention function now also records, per tenant, the last row it removed (id, seq, hash) and how many rows it
has removed in all, in ``audit_retention_boundary``: written only by that function, read-only for the app.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from migrations.rls import enable_tenant_rls, grant_dml

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Created in 0001; owns the retention functions.
RETENTION_ROLE = "bi_retention"

_PURGE_ANCHORED = """
    CREATE OR REPLACE FUNCTION bi_audit_purge_expired() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
    DECLARE
        removed bigint;
    BEGIN
        WITH gone AS (
            DELETE FROM public.audit_log WHERE created_at < now() - interval '90 days'
            RETURNING id, tenant_id, seq, hash
        ), per_tenant AS (
            SELECT DISTINCT ON (tenant_id) tenant_id, id, seq, hash, count(*) OVER (PARTITION BY tenant_id) AS n
            FROM gone ORDER BY tenant_id, id DESC
        ), anchored AS (
            INSERT INTO public.audit_retention_boundary AS b
                (tenant_id, last_removed_id, last_removed_seq, last_removed_hash, removed_count, updated_at)
            SELECT tenant_id, id, seq, hash, n, now() FROM per_tenant
            ON CONFLICT (tenant_id) DO UPDATE SET
                last_removed_id = EXCLUDED.last_removed_id, last_removed_seq = EXCLUDED.last_removed_seq,
                last_removed_hash = EXCLUDED.last_removed_hash, removed_count = b.removed_count + EXCLUDED.removed_count,
                updated_at = EXCLUDED.updated_at
        )
        -- A data-modifying WITH runs to completion whether or not the outer query reads it.
        SELECT count(*) INTO removed FROM gone;
        RETURN removed;
    END $$"""

_PURGE_ORIGINAL = """
    CREATE OR REPLACE FUNCTION bi_audit_purge_expired() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public AS $$
        WITH gone AS (DELETE FROM public.audit_log WHERE created_at < now() - interval '90 days' RETURNING 1)
        SELECT count(*) FROM gone $$"""


def _replace_purge_function(definition: str) -> None:
    # The function belongs to bi_retention (see give_function_to); replacing it keeps that owner and its grants,
    # and needs the migrating role to be a member of the owner for this one statement.
    op.execute(f"GRANT {RETENTION_ROLE} TO current_user")
    op.execute(definition)
    op.execute(f"REVOKE {RETENTION_ROLE} FROM current_user")


def upgrade() -> None:
    op.execute("ALTER TABLE audit_log ADD COLUMN seq bigint, ADD COLUMN key_id varchar(32)")
    op.execute("ALTER TABLE audit_log ADD CONSTRAINT audit_log_keyed_rows_have_seq "
               "CHECK ((key_id IS NULL) = (seq IS NULL))")
    op.execute("CREATE UNIQUE INDEX audit_log_tenant_seq ON audit_log (tenant_id, seq) WHERE seq IS NOT NULL")

    op.execute("""
        CREATE TABLE audit_retention_boundary (
            tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            last_removed_id bigint NOT NULL,
            last_removed_seq bigint,
            last_removed_hash varchar(64) NOT NULL,
            removed_count bigint NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    enable_tenant_rls("audit_retention_boundary")
    grant_dml("audit_retention_boundary", "SELECT")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON audit_retention_boundary TO {RETENTION_ROLE}")
    # The purge runs with no tenant set and anchors every tenant it trimmed.
    op.execute(f"""CREATE POLICY retention_anchors ON audit_retention_boundary TO {RETENTION_ROLE}
                   USING (true) WITH CHECK (true)""")
    _replace_purge_function(_PURGE_ANCHORED)


def downgrade() -> None:
    _replace_purge_function(_PURGE_ORIGINAL)
    op.execute("DROP TABLE IF EXISTS audit_retention_boundary")
    op.execute("DROP INDEX IF EXISTS audit_log_tenant_seq")
    op.execute("ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_keyed_rows_have_seq")
    op.execute("ALTER TABLE audit_log DROP COLUMN IF EXISTS key_id, DROP COLUMN IF EXISTS seq")
