"""The tenant's audit log page (owners and admins)."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.auth.roles import permission_page
from app.tenancy import db_session
from app.views.htmx import wants_partial

bp = Blueprint("audit", __name__, url_prefix="/settings/audit-log")
PAGE_SIZE = 50


@bp.get("/")
@permission_page("view_audit_log")
def index():
    before_id = request.args.get("before", type=int)
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(PAGE_SIZE + 1)
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    rows = db_session().execute(query).scalars().all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    template = "audit/_rows.html" if wants_partial() and before_id else "audit/page.html"
    return render_template(template, rows=rows, next_before=rows[-1].id if more and rows else None)
