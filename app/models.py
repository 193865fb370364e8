"""Imports every model so ``Base.metadata`` is complete (for tests and tooling)."""

from app.audit.models import AuditEntry, RetentionBoundary
from app.auth.models import SsoIdentity
from app.billing.models import StripeEvent, TenantBilling
from app.branding.models import BrandingSettings
from app.connectwise.models import Connection, MemberSync, OnPremHost
from app.invoices.models import LinkView, PublicLink
from app.review.callback_state import CallbackState
from app.review.guest_models import GuestLink
from app.review.models import CallbackRegistration, Flag, ReviewSettings, Snapshot, Sweep
from app.sending.models import InvoiceSend, MailWebhookEvent, SendBatch, SendSettings
from app.support.models import SupportGrant
from app.tenants.models import Tenant, TenantSettings
from app.users.models import User

__all__ = ["AuditEntry", "BrandingSettings", "Connection", "LinkView", "MemberSync", "OnPremHost", "PublicLink", "SsoIdentity",
           "CallbackRegistration", "CallbackState", "Flag", "GuestLink", "ReviewSettings", "Snapshot", "Sweep",
           "SupportGrant", "InvoiceSend", "MailWebhookEvent", "SendBatch", "SendSettings", "StripeEvent", "TenantBilling",
           "Tenant", "TenantSettings", "User", "RetentionBoundary"]
