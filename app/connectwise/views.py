"""ConnectWise settings page: the connection (admins only; a save says so and drops a test report it outdated),
on-premises hosts (owners only), test connection, member sync with progress."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.audit.web import current_actor, request_origin
from app.auth.roles import can, permission_page
from app.billing.limits import seat_limit_now
from app.connectwise import errors
from app.connectwise.connection import (
    FormError,
    credentials,
    failed_check,
    get_connection,
    run_checks,
    save_connection,
    store_test_result,
)
from app.connectwise.members import new_member_role, request_sync, sync_state
from app.connectwise.onprem import add_host, list_hosts, remove_host
from app.connectwise.permissions import by_module
from app.connectwise.tenant_client import tenant_client
from app.review.callback_jobs import request_sync_if_needed
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.views.htmx import wants_partial

bp = Blueprint("connectwise", __name__, url_prefix="/settings/connectwise")


def _resolver():
    """The DNS resolver for site checks: the system's unless a test injected its own."""
    return current_services().connectwise_resolver


def _form_context(form: dict | None = None, field_errors: dict | None = None, host_form: dict | None = None,
                  host_errors: dict | None = None) -> dict:
    conn = get_connection(db_session())
    if conn is not None and form is None:
        creds = credentials(conn, current_services().keyring)
        form = {"site": conn.site, "company_id": conn.company_id, "public_key": creds.public_key}
    # Of the private key only that one is stored and since when: no character of it reaches the page.
    private_saved_at = (conn.private_key_saved_at or conn.created_at) if conn is not None else None
    return {"conn": conn, "form": form or {}, "errors": field_errors or {}, "private_saved_at": private_saved_at,
            "hosts": list_hosts(db_session()), "host_form": host_form or {}, "host_errors": host_errors or {},
            "can_manage_hosts": can(current_user.role, "connectwise_hosts"),
            "can_manage_users": can(current_user.role, "users_and_roles"),
            "new_member_role": new_member_role(db_session()), "permission_groups": by_module(),
            "sync": sync_state(db_session(), required_tenant_id()) if conn else None}


@bp.get("/")
@permission_page("connect_connectwise")
def settings():
    return render_template("connectwise/page.html", **_form_context())


@bp.post("/")
@permission_page("connect_connectwise")
def save():
    form = {k: request.form.get(k, "") for k in ("site", "company_id", "public_key", "private_key")}
    first = get_connection(db_session()) is None
    try:
        conn = save_connection(db_session(), current_services().keyring, required_tenant_id(), site=form["site"],
                        company_id=form["company_id"], public_key=form["public_key"],
                        private_key=form["private_key"],
                        allow_loopback_http=not current_services().config.is_production,
                        actor=current_actor(), origin=request_origin(), resolver=_resolver())
    except FormError as exc:
        form["private_key"] = ""
        context = _form_context(form, {exc.field: str(exc)})
        template = "connectwise/_form.html" if wants_partial() else "connectwise/page.html"
        return render_template(template, **context), 422
    # Review's callbacks follow the connection (registered, or moved off the old site with the old keys): a job
    # queued once this request has committed.
    request_sync_if_needed(current_services(), db_session(), required_tenant_id())
    message = "ConnectWise connection saved. Test it to check each permission."
    if wants_partial() and not first:
        # The form, a toast, and the test report as it now stands (gone when this save outdated it).
        html = render_template("connectwise/_form.html", **_form_context())
        html += render_template("connectwise/_test_slot.html", conn=conn, oob=True)
        html += render_template("connectwise/_toast_oob.html", category="success", message=message)
        return html
    flash(message, "success")
    if wants_partial():  # the first save: the whole page, now with its test and sync sections
        return "", 200, {"HX-Redirect": url_for("connectwise.settings")}
    return redirect(url_for("connectwise.settings"))


@bp.post("/test")
@permission_page("connect_connectwise")
def test():
    conn = get_connection(db_session())
    if conn is None:
        return render_template("connectwise/_test_report.html", results=None,
                               message="Save the connection first."), 422
    try:
        with tenant_client(db_session(), current_services().keyring, current_services().config,
                           current_services().redis, max_retries=1, timeout=8, resolver=_resolver()) as client:
            results = run_checks(client)
    except errors.ConnectWiseError as exc:
        results = [failed_check(exc)]
    store_test_result(conn, results)
    return render_template("connectwise/_test_report.html", results=results, conn=conn, message=None)


@bp.post("/members/sync")
@permission_page("connect_connectwise")
def sync_members():
    if get_connection(db_session()) is None:
        return render_template("connectwise/_member_sync.html", sync=None), 422
    state = request_sync(db_session(), current_services().redis, required_tenant_id(),
                         seat_limit_now(db_session()))
    return render_template("connectwise/_member_sync.html", sync=state)


@bp.get("/members/status")
@permission_page("connect_connectwise")
def sync_status():
    conn = get_connection(db_session())
    state = sync_state(db_session(), required_tenant_id()) if conn else None
    return render_template("connectwise/_member_sync.html", sync=state)


@bp.post("/hosts")
@permission_page("connectwise_hosts")
def add_onprem_host():
    host_form = {"host": request.form.get("host", "")}
    try:
        add_host(db_session(), required_tenant_id(), host_form["host"], actor=current_actor(), origin=request_origin(),
                 resolver=_resolver())
    except errors.ConnectWiseError as exc:
        context = _form_context(host_form=host_form, host_errors={"host": str(exc)})
        template = "connectwise/_hosts.html" if wants_partial() else "connectwise/page.html"
        return render_template(template, **context), 422
    flash("On-premises host allowed. You can now save it as the site.", "success")
    return redirect(url_for("connectwise.settings"))


@bp.post("/hosts/<uuid:host_id>/remove")
@permission_page("connectwise_hosts")
def remove_onprem_host(host_id: uuid.UUID):
    if remove_host(db_session(), host_id, actor=current_actor(), origin=request_origin()):
        flash("On-premises host removed. A connection to it stops working now.", "success")
    return redirect(url_for("connectwise.settings"))
