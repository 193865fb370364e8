"""The signed-in home page: money owed and overdue (from ConnectWise), the review, link views and failed sends
(from our own tables), and whether ConnectWise answers right now."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from app.services import current_services
from app.tenancy import db_session, required_tenant_id, tenant_required
from app.tenants.service import setup_status
from app.views.dashboard import FAILED_SENDS_DAYS, figures

bp = Blueprint("main", __name__)


@bp.get("/")
@login_required
@tenant_required
def dashboard():
    session = db_session()
    return render_template("dashboard/page.html", status=setup_status(session),
                           figures=figures(current_services(), session, required_tenant_id()),
                           failed_days=FAILED_SENDS_DAYS)
