"""Plans and subscriptions: one billing row per workspace (plan, status, trial, the Stripe customer and
subscription, the payment-failure grace period) and the Stripe webhook's processed event ids.

Workspaces that exist before billing were made by us from the CLI: they get the ``comped`` status (Pro without a
subscription) so nothing they use today becomes read-only by a migration. Sign-up starts a 14-day Pro trial.

Stripe's webhook arrives before any tenant is known: the event's customer id resolves to its tenant through
``bi_billing_customer_tenant``, owned by a role that may read only the tenant id and customer id.

Revision ID: 0019
Revises: 0018
"""

from alembic import op

from migrations.rls import enable_tenant_rls, ensure_role, give_function_to, grant_dml

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

HOOKS_ROLE = "bi_billing_hooks"


def upgrade() -> None:
    ensure_role(HOOKS_ROLE)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {HOOKS_ROLE}")
    op.execute("""
        CREATE TABLE tenant_billing (
            tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
            plan varchar(16) NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro')),
            billing_interval varchar(8) CHECK (billing_interval IN ('month', 'year')),
            status varchar(24) NOT NULL DEFAULT 'none' CHECK (status IN
                ('none', 'comped', 'trialing', 'active', 'past_due', 'canceled', 'incomplete', 'incomplete_expired',
                 'unpaid', 'paused')),
            trial_ends_at timestamptz,
            stripe_customer_id varchar(255) UNIQUE,
            stripe_subscription_id varchar(255),
            current_period_end timestamptz,
            cancel_at_period_end boolean NOT NULL DEFAULT false,
            payment_failed_at timestamptz,
            grace_ends_at timestamptz,
            state_as_of timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")
    enable_tenant_rls("tenant_billing")
    grant_dml("tenant_billing", "SELECT, INSERT, UPDATE")
    op.execute(f"GRANT SELECT (tenant_id, stripe_customer_id) ON tenant_billing TO {HOOKS_ROLE}")
    op.execute(f"CREATE POLICY tenant_billing_customer_lookup ON tenant_billing FOR SELECT TO {HOOKS_ROLE} "
               "USING (true)")
    op.execute("INSERT INTO tenant_billing (tenant_id, plan, status) SELECT id, 'pro', 'comped' FROM tenants")

    op.execute("""
        CREATE TABLE stripe_events (
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            event_id varchar(255) NOT NULL,
            event_type varchar(64) NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, event_id)
        )""")
    enable_tenant_rls("stripe_events")
    grant_dml("stripe_events", "SELECT, INSERT")

    # Pre-tenant path: a Stripe customer id -> its tenant, nothing else.
    op.execute("""
        CREATE FUNCTION bi_billing_customer_tenant(p_customer text) RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, public AS $$
            SELECT b.tenant_id FROM public.tenant_billing b
            WHERE p_customer IS NOT NULL AND b.stripe_customer_id = p_customer $$""")
    give_function_to("bi_billing_customer_tenant(text)", HOOKS_ROLE)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS bi_billing_customer_tenant(text)")
    op.execute("DROP TABLE IF EXISTS stripe_events")
    op.execute("DROP TABLE IF EXISTS tenant_billing")
