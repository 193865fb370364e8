"""The signed-in home page: money owed and overdue (from ConnectWise), the review, link views and failed sends
(from our own tables), and whether ConnectWise answers right now."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy.orm import Session

from app.auth.roles import can
from app.billing.limits import review_limit, seat_limit
from app.billing.notices import plan_notice
from app.billing.state import billing_state
from app.onboarding.checklist import Checklist, checklist
from app.review.plan_limits import usage
from app.services import current_services
from app.tenancy import db_session, required_tenant_id, tenant_required
from app.tenants.service import setup_status
from app.users.service import seats_used
from app.views.dashboard import FAILED_SENDS_DAYS, figures

bp = Blueprint("main", __name__)


@bp.get("/")
@login_required
@tenant_required
def dashboard():
    session = db_session()
    return render_template("dashboard/page.html", status=setup_status(session),
                           figures=figures(current_services(), session, required_tenant_id()),
                           failed_days=FAILED_SENDS_DAYS, onboarding=_onboarding(session), **_plan(session))


def _plan(session: Session) -> dict:
    """The plan's small line (on Free, or in a trial) and its banner."""
    state = billing_state(session)
    line = None
    if state.in_trial or state.is_free:
        line = {"plan": state.plan.name, "in_trial": state.in_trial, "days_left": state.days_left_in_trial,
                "seats_used": seats_used(session), "seat_limit": seat_limit(state),
                "review_limit": review_limit(state), "review_usage": usage(session, review_limit(state))}
    return {"plan_line": line, "plan_notice": plan_notice(state)}


def _onboarding(session: Session) -> Checklist | None:
    """The checklist for those who set the workspace up (owners, admins), until every step is done."""
    if not (can(current_user.role, "connect_connectwise") or can(current_user.role, "users_and_roles")):
        return None
    steps = checklist(session)
    return None if steps.complete else steps
