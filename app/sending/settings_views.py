"""The send settings page (``/settings/sending/``): cover message templates with a live preview, PDF attached or
not, the ConnectWise billing status written back after a send, reminders. Permission ``send_emails``.

The billing statuses load after the page (htmx), so a slow or absent ConnectWise never holds the page up; only
statuses with ConnectWise's Sent flag are offered, since that flag is what keeps ConnectWise's own batch emailing
from sending the invoice again."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.connectwise import errors as cw_errors
from app.connectwise.records import InvalidRecord
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.review.status_map import Status, load_catalog
from app.sending.service import sender_name
from app.sending.settings import SendConfig, SendSettingsError, load_settings, save_settings, validate_form
from app.sending.templating import TOKENS, render_message
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.views.htmx import wants_partial

bp = Blueprint("sending_settings", __name__, url_prefix="/settings/sending")

TOKEN_HELP = {"client_name": "the client's name", "number": "the invoice number", "amount_due": "the amount due",
              "due_date": "the due date", "link": "the invoice's public page", "sender": "your workspace's name"}


def _sent_statuses() -> tuple[list[Status] | None, str | None]:
    """The active statuses with the Sent flag, or None and why they could not be read."""
    session, services = db_session(), current_services()
    try:
        statuses = load_catalog(session, services.redis, required_tenant_id(), lambda: tenant_client(
            session, services.keyring, services.config, services.redis))
    except NotConnected:
        return None, "Connect ConnectWise first: the statuses come from your ConnectWise."
    except cw_errors.Busy:
        raise
    except (cw_errors.ConnectWiseError, InvalidRecord) as exc:
        return None, f"Could not read your billing statuses from ConnectWise: {exc}"
    return [s for s in statuses if s.sent and not s.inactive], None


def _form_values(config: SendConfig) -> dict[str, Any]:
    return {"subject_template": config.subject_template, "body_template": config.body_template,
            "reminder_subject_template": config.reminder_subject_template,
            "reminder_body_template": config.reminder_body_template, "attach_pdf": config.attach_pdf,
            "sent_status_id": str(config.sent_status_id or ""), "reminders_enabled": config.reminders_enabled,
            "remind_days_before": str(config.remind_days_before or ""),
            "remind_every_days": str(config.remind_every_days or "")}


def _posted_values() -> dict[str, Any]:
    form = request.form
    return {"subject_template": form.get("subject_template", ""), "body_template": form.get("body_template", ""),
            "reminder_subject_template": form.get("reminder_subject_template", ""),
            "reminder_body_template": form.get("reminder_body_template", ""),
            "attach_pdf": form.get("attach_pdf") == "on", "sent_status_id": form.get("sent_status_id", ""),
            "reminders_enabled": form.get("reminders_enabled") == "on",
            "remind_days_before": form.get("remind_days_before", ""),
            "remind_every_days": form.get("remind_every_days", "")}


def _sample_tokens() -> dict[str, str]:
    sender = sender_name(db_session(), required_tenant_id()) or "Your company"
    link = current_services().config.BASE_URL.rstrip("/") + "/i/sample"
    return {"client_name": "Northwind Traders", "number": "INV-1042", "amount_due": "$1,250.00",
            "due_date": "15 Dec 2026", "link": link, "sender": sender}


def _previews(values: dict[str, Any]) -> dict[str, dict[str, str]]:
    tokens = _sample_tokens()
    return {kind: {"subject": render_message(values[f"{prefix}subject_template"], tokens),
                   "body": render_message(values[f"{prefix}body_template"], tokens)}
            for kind, prefix in (("invoice", ""), ("reminder", "reminder_"))}


def _context(values: dict[str, Any], errors: dict[str, str] | None = None) -> dict[str, Any]:
    config = load_settings(db_session())
    context: dict[str, Any] = {
        "values": values, "errors": errors or {}, "tokens": [(t, TOKEN_HELP.get(t, "")) for t in TOKENS],
        "previews": _previews(values), "saved_status_name": config.sent_status_name,
        "saved_status_id": config.sent_status_id}
    if errors and "sent_status_id" in errors:  # the picker shown at once, so its message stays beside it
        context["statuses"], context["problem"] = _sent_statuses()
    return context


@bp.get("/")
@permission_page("send_emails")
def page() -> str:
    return render_template("sending/settings.html", **_context(_form_values(load_settings(db_session()))))


@bp.get("/statuses")
@permission_page("send_emails")
def statuses() -> str:
    """The billing status picker with the tenant's Sent statuses (htmx loads it into the form)."""
    config = load_settings(db_session())
    listed, problem = _sent_statuses()
    picked = request.args.get("sent_status_id", str(config.sent_status_id or ""))
    return render_template("sending/_sent_status.html", statuses=listed, problem=problem, picked=picked,
                           saved_status_id=config.sent_status_id, saved_status_name=config.sent_status_name,
                           error=None)


@bp.post("/preview")
@permission_page("send_emails")
def preview() -> str:
    """The cover messages filled from a sample invoice, as typed so far."""
    values = _posted_values()
    return render_template("sending/_preview.html", previews=_previews(values))


@bp.post("/")
@permission_page("send_emails")
def save() -> ResponseReturnValue:
    session, tenant_id = db_session(), required_tenant_id()
    values = _posted_values()
    current = load_settings(session)
    listed: list[Status] | None = None
    if (request.form.get("sent_status_id") or "").strip():
        listed, _problem = _sent_statuses()
    try:
        new = validate_form(request.form, None if listed is None else {s.id: s.name for s in listed}, current)
    except SendSettingsError as exc:
        template = "sending/_settings_form.html" if wants_partial() else "sending/settings.html"
        return render_template(template, **_context(values, {exc.field: exc.message})), 422
    changed = save_settings(session, tenant_id, new, current_actor(), request_origin())
    message = "Sending settings saved." if changed else "Nothing changed."
    if wants_partial():
        context = _context(_form_values(load_settings(db_session())))
        return render_template("sending/_settings_form.html", toast=message, **context)
    flash(message, "success")
    return redirect(url_for("sending_settings.page"), 303)
