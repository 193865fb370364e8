"""Stripe's webhook (``/webhooks/stripe``): signed events resolved to their tenant through
``bi_billing_customer_tenant``, each event id processed once."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("billing_hooks", __name__)
