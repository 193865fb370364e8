"""Invoice review: snapshots of open invoices, their flags, a record per sweep, and the tenant's review settings.

Snapshot payloads and documents, and flag messages (which quote line items), are AES-GCM ciphertexts; only the
columns the inbox sorts and searches on stay plain. No foreign keys between the review tables: a flag outlives the
snapshot of an invoice that was sent (it is history), and a purge removes all of them in one transaction anyway.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from migrations.rls import enable_tenant_rls, grant_dml

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE review_settings (
            tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            storage_enabled boolean NOT NULL DEFAULT true,
            rule_settings jsonb NOT NULL DEFAULT '{}'::jsonb,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    enable_tenant_rls("review_settings")
    grant_dml("review_settings", "SELECT, INSERT, UPDATE")

    op.execute("""
        CREATE TABLE review_snapshots (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            invoice_id integer NOT NULL CHECK (invoice_id > 0),
            invoice_number varchar(64) NOT NULL,
            company_name text NOT NULL,
            display_type varchar(32) NOT NULL,
            total numeric(18, 4) NOT NULL,
            currency varchar(8) NOT NULL,
            status_id integer,
            status_name text NOT NULL,
            invoice_date date,
            due_date date,
            cw_last_updated timestamptz,
            content_hash varchar(64) NOT NULL,
            rules_digest varchar(64) NOT NULL,
            payloads_enc bytea NOT NULL,
            document_enc bytea NOT NULL,
            first_seen_at timestamptz NOT NULL DEFAULT now(),
            snapshot_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant_id, invoice_id)
        )""")
    op.execute("CREATE INDEX review_snapshots_tenant_number ON review_snapshots (tenant_id, invoice_number)")
    enable_tenant_rls("review_snapshots")
    grant_dml("review_snapshots")

    op.execute("""
        CREATE TABLE review_flags (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            invoice_id integer NOT NULL CHECK (invoice_id > 0),
            invoice_number varchar(64) NOT NULL,
            rule varchar(64) NOT NULL,
            target_type varchar(32) NOT NULL,
            target_id bigint NOT NULL,
            severity varchar(8) NOT NULL CHECK (severity IN ('error', 'warning', 'info')),
            message_enc bytea NOT NULL,
            first_seen timestamptz NOT NULL DEFAULT now(),
            last_seen timestamptz NOT NULL DEFAULT now(),
            cleared_at timestamptz,
            marked_ok_by uuid REFERENCES users(id) ON DELETE SET NULL,
            marked_ok_at timestamptz,
            UNIQUE (tenant_id, invoice_id, rule, target_type, target_id)
        )""")
    op.execute("CREATE INDEX review_flags_open ON review_flags (tenant_id, invoice_id) WHERE cleared_at IS NULL")
    enable_tenant_rls("review_flags")
    grant_dml("review_flags")

    op.execute("""
        CREATE TABLE review_sweeps (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            kind varchar(16) NOT NULL CHECK (kind IN ('full', 'incremental')),
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            invoices_seen integer NOT NULL DEFAULT 0,
            invoices_changed integer NOT NULL DEFAULT 0,
            invoices_failed integer NOT NULL DEFAULT 0,
            flags_raised integer NOT NULL DEFAULT 0,
            flags_cleared integer NOT NULL DEFAULT 0,
            cw_requests integer NOT NULL DEFAULT 0,
            outcome varchar(16) NOT NULL CHECK (outcome IN ('running', 'ok', 'failed')),
            reason text,
            failures jsonb NOT NULL DEFAULT '[]'::jsonb
        )""")
    op.execute("CREATE INDEX review_sweeps_tenant_started ON review_sweeps (tenant_id, started_at)")
    enable_tenant_rls("review_sweeps")
    grant_dml("review_sweeps")


def downgrade() -> None:
    for table in ("review_sweeps", "review_flags", "review_snapshots", "review_settings"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
