"""ConnectWise settings page: the connection (admins only), test connection, member sync."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from app.auth.roles import permission_required
from app.tenancy import tenant_required

bp = Blueprint("connectwise", __name__, url_prefix="/settings/connectwise")


@bp.get("/")
@login_required
@tenant_required
@permission_required("connect_connectwise")
def settings():  # type: ignore[no-untyped-def]
    return render_template("connectwise/page.html")
