"""Review callbacks' state per tenant: registered (which types, when), pending, failed (why) or off, the ConnectWise
keys the registration was made with (AES-GCM ciphertext, so the callbacks can be removed from the site they live on
after the connection has moved), and the callbacks that could not be removed from a previous site.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

from migrations.rls import enable_tenant_rls, grant_dml

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE review_callback_state (
            tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            status varchar(16) NOT NULL DEFAULT 'off'
                CHECK (status IN ('off', 'pending', 'registered', 'failed')),
            reason text,
            types jsonb NOT NULL DEFAULT '[]'::jsonb,
            attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            changed_at timestamptz NOT NULL DEFAULT now(),
            registered_at timestamptz,
            keys_enc bytea,
            left_behind jsonb NOT NULL DEFAULT '[]'::jsonb
        )""")
    enable_tenant_rls("review_callback_state")
    grant_dml("review_callback_state")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS review_callback_state")
