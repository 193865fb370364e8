"""Mailgun's delivery webhook (``/webhooks/mailgun``): signed events (delivered, failed, bounced, complained)
resolved to their tenant through ``bi_invoice_send_tenant``, each event id processed once."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("sending_hooks", __name__)
