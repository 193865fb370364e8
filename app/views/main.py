"""The signed-in home page: what is set up, and what to do next."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from app.tenancy import db_session, tenant_required
from app.tenants.service import setup_status

bp = Blueprint("main", __name__)


@bp.get("/")
@login_required
@tenant_required
def dashboard():
    return render_template("dashboard/page.html", status=setup_status(db_session()))
