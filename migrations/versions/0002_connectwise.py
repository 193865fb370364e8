"""ConnectWise: the connection (encrypted keys) and the member sync state.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from migrations.rls import enable_tenant_rls, grant_dml

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE connectwise_connections (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL UNIQUE REFERENCES tenants(id) ON DELETE CASCADE,
            site varchar(255) NOT NULL,
            company_id varchar(64) NOT NULL,
            public_key_enc bytea NOT NULL,
            private_key_enc bytea NOT NULL,
            codebase varchar(64),
            last_test_at timestamptz,
            last_test_ok boolean,
            last_test_report jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    enable_tenant_rls("connectwise_connections")
    grant_dml("connectwise_connections")

    op.execute("""
        CREATE TABLE connectwise_member_syncs (
            tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            job_id varchar(64),
            status varchar(16) NOT NULL DEFAULT 'never'
                CHECK (status IN ('never', 'queued', 'running', 'ok', 'failed')),
            started_at timestamptz,
            finished_at timestamptz,
            progress integer NOT NULL DEFAULT 0,
            created integer NOT NULL DEFAULT 0,
            updated integer NOT NULL DEFAULT 0,
            deactivated integer NOT NULL DEFAULT 0,
            error text
        )""")
    enable_tenant_rls("connectwise_member_syncs")
    grant_dml("connectwise_member_syncs")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS connectwise_member_syncs")
    op.execute("DROP TABLE IF EXISTS connectwise_connections")
