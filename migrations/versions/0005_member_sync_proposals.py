"""Member sync never rewrites a user: proposed email changes from ConnectWise wait for an owner or admin.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from migrations.rls import enable_tenant_rls, grant_dml

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Who deactivated a user: only a sync's own deactivation may be undone by a later sync.
    op.execute("""
        ALTER TABLE users ADD COLUMN deactivation_source varchar(8)
            CHECK (deactivation_source IS NULL OR deactivation_source IN ('app', 'sync'))""")
    # Nobody can tell who deactivated the users inactive today, so none of them is handed back to the sync.
    op.execute("UPDATE users SET deactivation_source = 'app' WHERE NOT active")

    op.execute("""
        CREATE TABLE user_email_proposals (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            cw_member_id integer NOT NULL,
            current_email varchar(320) NOT NULL,
            proposed_email varchar(320) NOT NULL,
            status varchar(8) NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'rejected')),
            decided_by uuid REFERENCES users(id) ON DELETE SET NULL,
            decided_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    # One proposal per user at most: a later ConnectWise change updates it instead of adding another.
    op.execute("CREATE UNIQUE INDEX user_email_proposals_tenant_user_key ON user_email_proposals (tenant_id, user_id)")
    enable_tenant_rls("user_email_proposals")
    grant_dml("user_email_proposals")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS user_email_proposals")
    op.execute("ALTER TABLE users DROP COLUMN IF EXISTS deactivation_source")
