"""The workspace settings page (``/settings/workspace/``): the time zone every page's times are shown in and the
locale of the documents' dates and numbers. Owners and admins (``users_and_roles``: account-wide settings that
are not support's to change)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from app.audit.web import current_actor, request_origin
from app.auth.roles import permission_page
from app.tenancy import db_session
from app.tenants.workspace import (
    OFFERED_LOCALES,
    WorkspaceError,
    format_local,
    load_workspace,
    locale_label,
    save_workspace,
    zone_names,
    zone_of,
)

bp = Blueprint("workspace", __name__, url_prefix="/settings/workspace")


def _page(timezone: str, locale: str, errors: dict[str, str] | None = None, status: int = 200) -> Any:
    locales = list(OFFERED_LOCALES)
    if locale and locale not in locales and not (errors or {}).get("locale"):
        locales.insert(0, locale)
    zones = zone_names()
    return render_template(
        "tenants/workspace.html", timezone=timezone, locale=locale, errors=errors or {},
        zones=zones if timezone in zones or (errors or {}).get("timezone") else (timezone, *zones),
        locales=[(tag, locale_label(tag)) for tag in locales],
        now_there=format_local(datetime.now(UTC), zone_of(timezone)),
    ), status


@bp.get("/")
@permission_page("users_and_roles")
def page() -> Any:
    ws = load_workspace(db_session())
    return _page(ws.timezone, ws.locale)


@bp.post("/")
@permission_page("users_and_roles")
def save() -> Any:
    timezone, locale = request.form.get("timezone", ""), request.form.get("locale", "")
    try:
        ws = save_workspace(db_session(), current_user.tenant_id, current_actor(), timezone=timezone,
                            locale=locale, origin=request_origin())
    except WorkspaceError as exc:
        errors = {exc.field: str(exc)}
        return _page(timezone.strip()[:64], locale.strip()[:16], errors, 422)
    g.pop("workspace_zone", None)
    flash(f"Saved: times are shown in {ws.timezone}, documents use {locale_label(ws.locale)}.", "success")
    return redirect(url_for("workspace.page"))
