"""ConnectWise sites: on-premises hosts an owner allowed explicitly; when the private key was last entered.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from migrations.rls import enable_tenant_rls, grant_dml

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE connectwise_onprem_hosts (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            host varchar(270) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant_id, host)
        )""")
    enable_tenant_rls("connectwise_onprem_hosts")
    grant_dml("connectwise_onprem_hosts")
    op.execute("ALTER TABLE connectwise_connections ADD COLUMN private_key_saved_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE connectwise_connections DROP COLUMN IF EXISTS private_key_saved_at")
    op.execute("DROP TABLE IF EXISTS connectwise_onprem_hosts")
