"""The callbacks and storage parts of the review settings page (``/settings/review/``).

Callbacks: where they stand (registered types and since when, being worked on, failed and why, off and why; polled
while a job works on them) and "Register again" (``review_rules``), which queues the callbacks job. Storage: the
switch only platform support turns, through a support grant (``review_storage``), as the Trust & Security page
promises ("contact us to disable this"): off purges the tenant's review rows in the request's transaction (audited
with the counts, by the support actor) and queues the job that removes the callbacks; on queues their registration.
Everyone else sees why it is not theirs to turn. Both partials read their state from ``review_callback_panel()``, so
the full page and the htmx answers render the same files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.audit.log import record
from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.connectwise.connection import get_connection
from app.review.callback_jobs import request_sync
from app.review.callback_state import state_of
from app.review.models import CallbackRegistration
from app.review.settings import set_storage, settings_of
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.views.htmx import wants_partial

bp = Blueprint("review_callbacks", __name__, url_prefix="/settings/review")
TYPE_NAMES = {"invoice": "invoices", "time": "time entries", "expense": "expenses"}


@dataclass(frozen=True)
class CallbackPanel:
    """What the two partials show."""

    status: str  # off | pending | registered | failed
    reason: str | None = None
    types: list[str] = field(default_factory=list)
    registered_at: dt.datetime | None = None
    changed_at: dt.datetime | None = None
    attempts: int = 0
    site: str | None = None
    left_behind: list[dict] = field(default_factory=list)
    connected: bool = False
    storage: bool = True

    @property
    def type_names(self) -> list[str]:
        return [TYPE_NAMES.get(t, t) for t in self.types]

    @property
    def can_register(self) -> bool:
        return self.connected and self.storage and self.status != "pending"


def callback_panel() -> CallbackPanel:
    session, tenant_id = db_session(), required_tenant_id()
    state = state_of(session, tenant_id)
    registered = session.get(CallbackRegistration, state.tenant_id) if state is not None else None
    connected = get_connection(session) is not None
    storage = settings_of(session, tenant_id).storage_enabled
    if state is None:
        reason = None if connected and storage else ("Review storage is turned off." if not storage
                                                     else "ConnectWise is not connected.")
        return CallbackPanel("off", reason or "Not registered yet.", connected=connected, storage=storage)
    return CallbackPanel(state.status, state.reason, list(state.types or []), state.registered_at, state.changed_at,
                         state.attempts or 0, registered.site if registered is not None else None,
                         list(state.left_behind or []), connected, storage)


@bp.app_template_global("review_callback_panel")
def _panel_for_templates() -> CallbackPanel:
    return callback_panel()


@bp.get("/callbacks")
@permission_page("review_rules")
def callbacks_card() -> ResponseReturnValue:
    """The callbacks card alone: what the page polls while a callbacks job is working."""
    return render_template("review/_callbacks.html")


@bp.post("/callbacks/register")
@permission_page("review_rules")
def register_again() -> ResponseReturnValue:
    panel, tenant_id = callback_panel(), required_tenant_id()
    if not panel.connected or not panel.storage:
        message = "Connect ConnectWise first." if not panel.connected else "Review storage is turned off."
        return _refusal("review/_callbacks.html", message)
    record(db_session(), tenant_id, current_actor(), "review.callbacks_register_requested",
           target_type="review_callbacks", target_id=tenant_id, origin=request_origin())
    request_sync(current_services(), tenant_id, mode="register", session=db_session())
    return _answer("review/_callbacks.html", "Registering the callbacks with ConnectWise now.")


@bp.post("/storage")
@permission_page("review_storage")
def switch_storage() -> ResponseReturnValue:
    wanted = request.form.get("storage", "")
    if wanted not in ("on", "off"):
        return _refusal("review/_storage.html", "Choose on or off.")
    session, tenant_id = db_session(), required_tenant_id()
    if settings_of(session, tenant_id).storage_enabled == (wanted == "on"):
        return _answer("review/_storage.html", f"Review storage is already {wanted}.")
    purged = set_storage(session, tenant_id, wanted == "on", current_actor(), request_origin())
    request_sync(current_services(), tenant_id, session=session)
    if wanted == "on":
        message = "Review storage is on again; the callbacks are being registered and the next sweep stores invoices."
    else:
        message = (f"Review storage is off: purged {purged.get('snapshots', 0)} snapshots, {purged.get('flags', 0)} "
                   f"flags and {purged.get('sweeps', 0)} sweeps; the ConnectWise callbacks are being removed.")
    return _answer("review/_storage.html", message)


def _answer(template: str, message: str) -> ResponseReturnValue:
    """The partial (with the other one out of band, so both cards agree), or back to the page with a flash."""
    if wants_partial():
        return render_template(template, message=message, oob_other=True)
    flash(message, "success")
    return redirect(url_for("review_settings.page"))


def _refusal(template: str, message: str) -> ResponseReturnValue:
    """422 with the partial saying why (only a hand-made request gets here without htmx: the page's buttons send
    valid values)."""
    wants_partial()  # the answer varies by the htmx headers like every other one here
    return render_template(template, message=message, message_error=True), 422
