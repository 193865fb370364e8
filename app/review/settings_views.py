"""Review rule settings page: each rule on or off with its thresholds and watch lists, validated beside the field
(422), saved with an audit row, the stored snapshots evaluated again (no ConnectWise call); the last sweeps below."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.review import rule_settings
from app.review.models import Sweep
from app.review.rules import RULES, SettingsError
from app.review.settings import settings_of
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.views.htmx import wants_partial

bp = Blueprint("review_settings", __name__, url_prefix="/settings/review")
# ConnectWise's own product classes (ProductItem.productClass): a fixed list, so it is picked, not typed.
PRODUCT_CLASSES = ("Agreement", "Bundle", "Inventory", "NonInventory", "Service")
PICKED = {("product_not_taxable", "product_types"): PRODUCT_CLASSES}
RECENT_SWEEPS = 8


def form_settings(form: MultiDict) -> dict[str, dict]:
    """The posted form as raw rule settings (``validate_settings`` judges them): every rule, every setting."""
    raw: dict[str, dict] = {}
    for key, spec in RULES.items():
        values: dict = {"enabled": form.get(f"{key}.enabled") == "on"}
        for setting in spec.settings:
            name = f"{key}.{setting.key}"
            if setting.kind == "flag":
                values[setting.key] = form.get(name) == "on"
            elif (key, setting.key) in PICKED:
                values[setting.key] = form.getlist(name)
            elif setting.kind == "names":
                values[setting.key] = form.get(name, "")
            else:
                values[setting.key] = form.get(name, "").strip()
        raw[key] = values
    return raw


def _context(values: dict, errors: dict[str, str] | None = None) -> dict:
    session = db_session()
    sweeps = session.execute(select(Sweep).order_by(Sweep.started_at.desc()).limit(RECENT_SWEEPS)).scalars().all()
    return {"rules": RULES, "values": values, "errors": errors or {}, "picked": PICKED, "sweeps": sweeps,
            "storage": settings_of(session, required_tenant_id()).storage_enabled}


@bp.get("/")
@permission_page("review_rules")
def page():
    return render_template("review/settings.html", **_context(rule_settings.current(db_session(),
                                                                                    required_tenant_id())))


@bp.post("/")
@permission_page("review_rules")
def save():
    raw = form_settings(request.form)
    try:
        saved = rule_settings.save(db_session(), current_services().keyring, required_tenant_id(), raw,
                                   current_actor(), request_origin())
    except SettingsError as exc:
        template = "review/_rules.html" if wants_partial() else "review/settings.html"
        return render_template(template, **_context(raw, {exc.field: exc.message})), 422
    if not saved.changed:
        message = "Nothing changed."
    else:
        message = (f"Rule settings saved. Re-checked {saved.invoices} stored invoices without calling ConnectWise: "
                   f"{saved.raised} flags appeared, {saved.cleared} cleared.")
    if wants_partial():
        context = _context(rule_settings.current(db_session(), required_tenant_id()))
        return render_template("review/_rules.html", saved_message=message, **context)
    flash(message, "success")
    return redirect(url_for("review_settings.page"))
