"""Review rule settings page: each rule on or off with its thresholds and watch lists, validated beside the field
(422), saved with an audit row, the stored snapshots evaluated again (no ConnectWise call); the last sweeps below,
with the invoices each could not check.

Watch lists of ConnectWise names (``app.review.watch_lists``) are picked, not typed: the page renders at once with
typed entries, and htmx then swaps in the tenant's names (``names``), so a slow or absent ConnectWise never holds
the page up; a name added that the list does not hold is refused. Keywords stay typed."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.connectwise.client import Client
from app.connectwise.tenant_client import tenant_client
from app.review import rule_settings, watch_lists
from app.review.failures import failures_of
from app.review.models import Sweep
from app.review.rules import RULES, SettingsError, validate_settings
from app.review.settings import settings_of
from app.review.watch_lists import WATCH_LISTS, Names, Picker, WatchList
from app.services import current_services
from app.tenancy import db_session, required_tenant_id
from app.views.htmx import wants_partial

bp = Blueprint("review_settings", __name__, url_prefix="/settings/review")
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
            elif name in WATCH_LISTS:  # checkboxes of the picker, or typed lines while it could not load
                values[setting.key] = watch_lists.selected_names(form.getlist(name))
            elif setting.kind == "names":
                values[setting.key] = form.get(name, "")
            else:
                values[setting.key] = form.get(name, "").strip()
        raw[key] = values
    return raw


def _client() -> Client:
    services = current_services()
    return tenant_client(db_session(), services.keyring, services.config, services.redis)


def _names(watch: WatchList) -> Names:
    return watch_lists.load_names(watch, _client)


def _picker(watch: WatchList, selected: object, names: Names | None = None) -> Picker:
    label = next(s.label for s in RULES[watch.rule].settings if s.key == watch.setting)
    url = url_for("review_settings.names", rule=watch.rule, setting=watch.setting)
    values = selected if isinstance(selected, list | tuple | str) else []
    return watch_lists.picker(watch, label, values, url, names)


def _context(values: dict, errors: dict[str, str] | None = None) -> dict:
    session = db_session()
    sweeps = session.execute(select(Sweep).order_by(Sweep.started_at.desc()).limit(RECENT_SWEEPS)).scalars().all()
    pickers = {field: _picker(watch, values.get(watch.rule, {}).get(watch.setting))
               for field, watch in WATCH_LISTS.items()}
    return {"rules": RULES, "values": values, "errors": errors or {}, "pickers": pickers, "sweeps": sweeps,
            "sweep_failures": {s.id: failures_of(s) for s in sweeps},
            "storage": settings_of(session, required_tenant_id()).storage_enabled}


@bp.get("/")
@permission_page("review_rules")
def page():
    return render_template("review/settings.html", **_context(rule_settings.current(db_session(),
                                                                                    required_tenant_id())))


@bp.get("/names/<rule>/<setting>")
@permission_page("review_rules")
def names(rule: str, setting: str):
    """One watch list's picker with the tenant's names (htmx loads it after the page); the entries already chosen
    come in the query, as the field holds them."""
    watch = WATCH_LISTS.get(f"{rule}.{setting}")
    if watch is None:
        abort(404)
    return render_template("review/_pickers.html", picker=_picker(watch, request.args.getlist(watch.field),
                                                                  _names(watch)))


@bp.post("/")
@permission_page("review_rules")
def save():
    raw = form_settings(request.form)
    session, tenant_id = db_session(), required_tenant_id()
    try:
        checked = watch_lists.check_added(validate_settings(raw), rule_settings.current(session, tenant_id), _names)
        saved = rule_settings.save(session, current_services().keyring, tenant_id, checked, current_actor(),
                                   request_origin())
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
