"""The one place that talks to Stripe, through the official SDK. Card data never passes through here: upgrades go
to Stripe Checkout and card changes to the Customer Portal."""

from __future__ import annotations

import stripe

from app.config import Config


def stripe_client(cfg: Config) -> stripe.StripeClient:
    """A client for the configured account; ``STRIPE_API_BASE`` points tests at localstripe."""
    return stripe.StripeClient(cfg.STRIPE_SECRET_KEY, base_addresses={"api": cfg.STRIPE_API_BASE},
                               max_network_retries=2)
