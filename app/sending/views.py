"""Sending pages for staff: the send panel on an invoice (compose, To/CC, cover message, send), bulk sends from
the invoices list and the review inbox, and their progress. Permission ``send_emails``."""

from __future__ import annotations

from flask import Blueprint, render_template

from app.auth.roles import permission_page

bp = Blueprint("sending", __name__)


@bp.get("/invoices/<int:invoice_id>/send")
@permission_page("send_emails")
def invoice_panel(invoice_id: int) -> str:
    """The send panel on an invoice's page, loaded by htmx after the page."""
    return render_template("sending/_invoice_panel.html", invoice_id=invoice_id)
