"""Sending invoices to clients: the workspace's send settings (cover message templates, PDF attached or not, the
ConnectWise billing status written back after a send, reminders), one row per message sent (recipients encrypted,
Mailgun's message id and the last delivery event), bulk-send batches for progress, and the delivery webhook's
processed event ids.

Mailgun's webhook arrives before any tenant is known: the message's own id (our ``invoice_sends.id``, sent as a
custom variable) resolves to its tenant through ``bi_invoice_send_tenant``, owned by a role that may read only the id
and tenant id of ``invoice_sends``.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

from migrations.rls import enable_tenant_rls, ensure_role, give_function_to, grant_dml

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

HOOKS_ROLE = "bi_mail_hooks"


def upgrade() -> None:
    ensure_role(HOOKS_ROLE)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {HOOKS_ROLE}")
    op.execute("""
        CREATE TABLE send_settings (
            tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            subject_template text NOT NULL,
            body_template text NOT NULL,
            reminder_subject_template text NOT NULL,
            reminder_body_template text NOT NULL,
            attach_pdf boolean NOT NULL DEFAULT true,
            sent_status_id integer CHECK (sent_status_id > 0),
            sent_status_name varchar(100),
            reminders_enabled boolean NOT NULL DEFAULT false,
            remind_days_before integer CHECK (remind_days_before BETWEEN 1 AND 60),
            remind_every_days integer CHECK (remind_every_days BETWEEN 1 AND 60),
            updated_by uuid,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    enable_tenant_rls("send_settings")
    grant_dml("send_settings")

    op.execute("""
        CREATE TABLE send_batches (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            source varchar(16) NOT NULL CHECK (source IN ('invoices', 'review', 'reminders')),
            total integer NOT NULL CHECK (total >= 0),
            requested_by uuid,
            created_at timestamptz NOT NULL DEFAULT now()
        )""")
    enable_tenant_rls("send_batches")
    grant_dml("send_batches")

    op.execute("""
        CREATE TABLE invoice_sends (
            id uuid PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            invoice_id integer NOT NULL CHECK (invoice_id > 0),
            invoice_number varchar(64) NOT NULL DEFAULT '',
            kind varchar(16) NOT NULL CHECK (kind IN ('invoice', 'reminder')),
            batch_id uuid REFERENCES send_batches(id) ON DELETE SET NULL,
            to_enc bytea,
            cc_enc bytea,
            status varchar(16) NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
            reason text,
            provider_message_id varchar(255),
            delivery varchar(16) CHECK (delivery IN ('accepted', 'delivered', 'failed', 'bounced', 'complained')),
            delivery_reason text,
            delivery_at timestamptz,
            writeback varchar(16) CHECK (writeback IN ('done', 'failed', 'not_set', 'skipped')),
            writeback_reason text,
            attempts integer NOT NULL DEFAULT 0,
            requested_by uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            sent_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("CREATE INDEX invoice_sends_invoice ON invoice_sends (tenant_id, invoice_id, created_at DESC)")
    op.execute("CREATE INDEX invoice_sends_batch ON invoice_sends (batch_id) WHERE batch_id IS NOT NULL")
    op.execute("CREATE INDEX invoice_sends_failed ON invoice_sends (tenant_id, created_at DESC) "
               "WHERE status = 'failed' OR delivery IN ('failed', 'bounced', 'complained')")
    enable_tenant_rls("invoice_sends")
    grant_dml("invoice_sends")
    op.execute(f"GRANT SELECT (id, tenant_id) ON invoice_sends TO {HOOKS_ROLE}")
    op.execute(f"CREATE POLICY invoice_send_lookup ON invoice_sends FOR SELECT TO {HOOKS_ROLE} USING (true)")

    op.execute("""
        CREATE TABLE mail_webhook_events (
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            event_id varchar(255) NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, event_id)
        )""")
    enable_tenant_rls("mail_webhook_events")
    grant_dml("mail_webhook_events", "SELECT, INSERT, DELETE")

    # Pre-tenant path: a delivery event's send id -> its tenant, nothing else.
    op.execute("""
        CREATE FUNCTION bi_invoice_send_tenant(p_send_id uuid) RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, public AS $$
            SELECT s.tenant_id FROM public.invoice_sends s WHERE s.id = p_send_id $$""")
    give_function_to("bi_invoice_send_tenant(uuid)", HOOKS_ROLE)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS bi_invoice_send_tenant(uuid)")
    op.execute("DROP TABLE IF EXISTS mail_webhook_events")
    op.execute("DROP TABLE IF EXISTS invoice_sends")
    op.execute("DROP TABLE IF EXISTS send_batches")
    op.execute("DROP TABLE IF EXISTS send_settings")
