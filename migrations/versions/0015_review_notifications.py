"""Invoice review, part 3 (comments): notifications of a user mentioned in a comment, for the header's list and its
unread count.

One row per mentioned user and comment; the comment itself is the timeline event (encrypted detail), so this table
holds ids and times only. The header counts a user's unread rows through a partial index.

Revision ID: 0015
Revises: 0013
"""

from alembic import op

from migrations.rls import enable_tenant_rls, grant_dml

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE review_notifications (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            invoice_id integer NOT NULL CHECK (invoice_id > 0),
            event_id uuid REFERENCES review_events(id) ON DELETE CASCADE,
            kind varchar(16) NOT NULL DEFAULT 'mentioned' CHECK (kind IN ('mentioned')),
            actor_name text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT now(),
            read_at timestamptz
        )""")
    op.execute("CREATE INDEX review_notifications_list ON review_notifications (tenant_id, user_id, created_at DESC)")
    op.execute("CREATE INDEX review_notifications_unread ON review_notifications (tenant_id, user_id) "
               "WHERE read_at IS NULL")
    op.execute("CREATE INDEX review_notifications_event ON review_notifications (event_id)")
    enable_tenant_rls("review_notifications")
    grant_dml("review_notifications")


def downgrade() -> None:
    op.execute("DROP TABLE review_notifications")
