"""The billing page (``/settings/billing/``, permission ``billing``): plan, status, trial or renewal date, usage
against the limits, upgrade (Stripe Checkout) and manage (Stripe Customer Portal)."""

from __future__ import annotations

from flask import Blueprint, render_template

from app.auth.roles import permission_page

bp = Blueprint("billing", __name__)


@bp.get("/settings/billing/")
@permission_page("billing")
def page() -> str:
    return render_template("billing/page.html")
