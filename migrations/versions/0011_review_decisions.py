"""Invoice review, part 2: each invoice's review (its inbox row and state), its reviewers, read marks, the
activity timeline's events, and the billing-status write-backs to ConnectWise; the decision -> status mapping.

The inbox is served from ``review_invoices`` alone: its indexes fit the tabs (state, open, blocking flags), the
default sort (invoice date), the search (number, company; trigram) and "only mine" (reviewers by user).
Event details are AES-GCM ciphertexts (reasons and comments quote invoices).

Revision ID: 0011
Revises: 0010
"""

from alembic import op

from migrations.rls import enable_tenant_rls, grant_dml

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE review_settings ADD COLUMN status_map jsonb NOT NULL DEFAULT '{}'::jsonb")

    op.execute("""
        CREATE TABLE review_invoices (
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
            time_count integer NOT NULL DEFAULT 0,
            product_count integer NOT NULL DEFAULT 0,
            expense_count integer NOT NULL DEFAULT 0,
            open boolean NOT NULL DEFAULT true,
            left_open_at timestamptz,
            state varchar(16) NOT NULL DEFAULT 'needs_review'
                CHECK (state IN ('needs_review', 'approved', 'rejected', 'closed')),
            state_at timestamptz,
            state_by uuid,
            worst_flag integer NOT NULL DEFAULT 0 CHECK (worst_flag BETWEEN 0 AND 3),
            open_flags integer NOT NULL DEFAULT 0,
            blocking_flags integer NOT NULL DEFAULT 0,
            changed_at timestamptz NOT NULL DEFAULT now(),
            cw_changed_at timestamptz,
            routing_seeded_at timestamptz,
            first_seen_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant_id, invoice_id)
        )""")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX review_invoices_tab ON review_invoices (tenant_id, open, state, invoice_date DESC, id)")
    op.execute("CREATE INDEX review_invoices_flagged ON review_invoices (tenant_id, invoice_date DESC, id) "
               "WHERE open AND blocking_flags > 0")
    op.execute("CREATE INDEX review_invoices_number ON review_invoices (tenant_id, lower(invoice_number))")
    op.execute("CREATE INDEX review_invoices_search ON review_invoices USING gin "
               "(lower(invoice_number || ' ' || company_name) gin_trgm_ops)")
    enable_tenant_rls("review_invoices")
    grant_dml("review_invoices")

    op.execute("""
        CREATE TABLE review_reviewers (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            invoice_id integer NOT NULL CHECK (invoice_id > 0),
            user_id uuid,
            member_id integer,
            name text NOT NULL,
            state varchar(16) NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'viewed', 'approved', 'rejected')),
            state_at timestamptz,
            source varchar(16) NOT NULL CHECK (source IN ('routing', 'manual', 'mention')),
            added_by uuid,
            added_at timestamptz NOT NULL DEFAULT now(),
            CHECK (user_id IS NOT NULL OR member_id IS NOT NULL)
        )""")
    op.execute("CREATE UNIQUE INDEX review_reviewers_user ON review_reviewers (tenant_id, invoice_id, user_id) "
               "WHERE user_id IS NOT NULL")
    op.execute("CREATE UNIQUE INDEX review_reviewers_member ON review_reviewers (tenant_id, invoice_id, member_id) "
               "WHERE member_id IS NOT NULL")
    op.execute("CREATE INDEX review_reviewers_by_user ON review_reviewers (tenant_id, user_id, invoice_id)")
    enable_tenant_rls("review_reviewers")
    grant_dml("review_reviewers")

    op.execute("""
        CREATE TABLE review_reads (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            invoice_id integer NOT NULL CHECK (invoice_id > 0),
            user_id uuid NOT NULL,
            read_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant_id, user_id, invoice_id)
        )""")
    enable_tenant_rls("review_reads")
    grant_dml("review_reads")

    op.execute("""
        CREATE TABLE review_events (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            invoice_id integer NOT NULL CHECK (invoice_id > 0),
            at timestamptz NOT NULL DEFAULT now(),
            kind varchar(32) NOT NULL,
            actor_type varchar(16) NOT NULL CHECK (actor_type IN ('user', 'guest', 'member', 'system')),
            actor_id varchar(64),
            actor_name text NOT NULL,
            detail_enc bytea,
            source_key varchar(64)
        )""")
    op.execute("CREATE INDEX review_events_invoice ON review_events (tenant_id, invoice_id, at)")
    op.execute("CREATE UNIQUE INDEX review_events_source ON review_events (tenant_id, invoice_id, source_key) "
               "WHERE source_key IS NOT NULL")
    enable_tenant_rls("review_events")
    grant_dml("review_events")

    op.execute("""
        CREATE TABLE review_writebacks (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            invoice_id integer NOT NULL CHECK (invoice_id > 0),
            decision varchar(16) NOT NULL CHECK (decision IN ('approved', 'rejected', 'closed', 'manual')),
            target_status_id integer NOT NULL,
            target_status_name text NOT NULL,
            expected_status_id integer,
            state varchar(16) NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'done', 'failed', 'conflict', 'superseded')),
            reason text,
            attempts integer NOT NULL DEFAULT 0,
            created_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz
        )""")
    op.execute("CREATE INDEX review_writebacks_invoice ON review_writebacks (tenant_id, invoice_id, created_at)")
    enable_tenant_rls("review_writebacks")
    grant_dml("review_writebacks")


def downgrade() -> None:
    for table in ("review_writebacks", "review_events", "review_reads", "review_reviewers", "review_invoices"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("ALTER TABLE review_settings DROP COLUMN IF EXISTS status_map")
