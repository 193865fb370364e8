"""The send settings page (``/settings/sending/``): cover message templates, PDF attached or not, the ConnectWise
billing status written back after a send, reminders. Permission ``send_emails``."""

from __future__ import annotations

from flask import Blueprint, render_template

from app.auth.roles import permission_page

bp = Blueprint("sending_settings", __name__)


@bp.get("/settings/sending/")
@permission_page("send_emails")
def page() -> str:
    return render_template("sending/settings.html")
