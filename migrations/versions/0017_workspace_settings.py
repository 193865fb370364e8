"""Workspace settings the first screens need: the workspace's locale (dates on documents and pages), the role new
ConnectWise members get from a member sync (none by default: they arrive listed without sign-in access), the
``no_access`` role itself, and a public link's token kept encrypted so one stable link per invoice can be copied
again (the hash stays the lookup).

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE tenant_settings ADD COLUMN locale varchar(16) NOT NULL DEFAULT 'en-US'")
    op.execute("ALTER TABLE tenant_settings ADD COLUMN new_member_role varchar(32) "
               "CHECK (new_member_role IN ('admin', 'billing_manager', 'reviewer', 'viewer'))")
    op.execute("ALTER TABLE users DROP CONSTRAINT users_role_check")
    op.execute("ALTER TABLE users ADD CONSTRAINT users_role_check "
               "CHECK (role IN ('owner', 'admin', 'billing_manager', 'reviewer', 'viewer', 'no_access'))")
    op.execute("ALTER TABLE public_links ADD COLUMN token_enc bytea")


def downgrade() -> None:
    op.execute("ALTER TABLE public_links DROP COLUMN IF EXISTS token_enc")
    op.execute("UPDATE users SET role = 'viewer', active = false WHERE role = 'no_access'")
    op.execute("ALTER TABLE users DROP CONSTRAINT users_role_check")
    op.execute("ALTER TABLE users ADD CONSTRAINT users_role_check "
               "CHECK (role IN ('owner', 'admin', 'billing_manager', 'reviewer', 'viewer'))")
    op.execute("ALTER TABLE tenant_settings DROP COLUMN IF EXISTS new_member_role")
    op.execute("ALTER TABLE tenant_settings DROP COLUMN IF EXISTS locale")
