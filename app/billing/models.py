"""The billing tables (migration 0019): one billing row per workspace and the Stripe webhook's processed ids.
The logic is in ``app.billing.state`` and its neighbours."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped


class TenantBilling(TenantScoped, Base):
    """The workspace's plan and subscription. ``status`` is Stripe's subscription status, or ``none`` (never
    subscribed), or ``comped`` (Pro given by us without a subscription). ``state_as_of`` is the time of the
    subscription state last applied, so an older event never undoes a newer one."""

    __tablename__ = "tenant_billing"
    __tenant_key__ = "primary_key"

    plan: Mapped[str] = mapped_column(String(16), default="free", server_default="free")
    billing_interval: Mapped[str | None] = mapped_column(String(8), nullable=True)  # month | year
    status: Mapped[str] = mapped_column(String(24), default="none", server_default="none")
    trial_ends_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    current_period_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    payment_failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    grace_ends_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    state_as_of: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                    onupdate=func.now())


class StripeEvent(TenantScoped, Base):
    """A Stripe event already processed: Stripe retries, and each event id counts once."""

    __tablename__ = "stripe_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
