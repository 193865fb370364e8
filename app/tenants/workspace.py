"""The workspace's time zone and locale: which values are allowed, reading and saving them (audited), and
formatting a moment in the workspace's zone with the zone's abbreviation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale, UnknownLocaleError
from flask import g, has_request_context
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, changes, record
from app.tenancy import current_tenant_id, db_session
from app.tenants.models import TenantSettings

DEFAULT_ZONE = "UTC"
DEFAULT_LOCALE = "en-US"
# The locales offered on the settings page; any other Babel knows is accepted too (typed or sent by a client).
OFFERED_LOCALES = ("en-US", "en-GB", "en-CA", "en-AU", "de-DE", "de-AT", "de-CH", "fr-FR", "fr-CA", "nl-NL",
                   "nl-BE", "es-ES", "it-IT", "sv-SE", "da-DK", "nb-NO", "fi-FI", "pl-PL", "pt-BR", "ja-JP")


@dataclass(frozen=True)
class Workspace:
    timezone: str
    locale: str


class WorkspaceError(ValueError):
    """A value the workspace settings refuse; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """The IANA zone names offered (the canonical Area/City ones, plus UTC)."""
    names = {n for n in available_timezones() if "/" in n and not n.startswith(("Etc/", "SystemV/", "posix/",
                                                                                  "right/"))}
    return ("UTC", *sorted(names))


def valid_zone(name: str) -> str:
    """The zone name if zoneinfo knows it, else WorkspaceError."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise WorkspaceError("timezone", "Choose a time zone from the list, like Europe/Berlin.")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WorkspaceError("timezone", f"“{name}” is not a time zone we know. Choose one from the list, "
                                         "like Europe/Berlin.") from None
    return name


def valid_locale(tag: str) -> str:
    """The locale as a BCP 47 tag (``de-DE``) if Babel knows it, with a territory; else WorkspaceError."""
    tag = (tag or "").strip().replace("_", "-")
    if not tag or len(tag) > 16:
        raise WorkspaceError("locale", "Choose a language and region from the list, like en-GB.")
    try:
        loc = Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        raise WorkspaceError("locale", f"“{tag}” is not a locale we know. Choose one from the list, "
                                       "like en-GB.") from None
    if not loc.territory:
        raise WorkspaceError("locale", "Choose a language with its region, like en-GB or de-DE (dates and "
                                       "numbers differ by region).")
    return f"{loc.language}-{loc.territory}"


def locale_label(tag: str) -> str:
    """``de-DE`` -> "Deutsch (Deutschland) · German (Germany)"."""
    try:
        loc = Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return tag
    own, english = loc.get_display_name(loc) or tag, loc.get_display_name("en") or tag
    return english if own == english else f"{english} · {own}"


def load_workspace(session: Session) -> Workspace:
    """The session's tenant's zone and locale (defaults when no settings row is visible)."""
    row = session.execute(select(TenantSettings.timezone, TenantSettings.locale)).first()
    if row is None:
        return Workspace(DEFAULT_ZONE, DEFAULT_LOCALE)
    return Workspace(row.timezone or DEFAULT_ZONE, row.locale or DEFAULT_LOCALE)


def save_workspace(session: Session, tenant_id: uuid.UUID | str, actor: Actor, *, timezone: str, locale: str,
                   origin: Origin | None = None) -> Workspace:
    """Validate and store the zone and locale; audits ``workspace.settings_changed`` when something changed."""
    zone, tag = valid_zone(timezone), valid_locale(locale)
    row = session.execute(select(TenantSettings)).scalar_one_or_none()
    if row is None:
        row = TenantSettings(tenant_id=uuid.UUID(str(tenant_id)))
        session.add(row)
    before, after = changes({"timezone": row.timezone, "locale": row.locale}, {"timezone": zone, "locale": tag})
    row.timezone, row.locale = zone, tag
    session.flush()
    if after:
        record(session, tenant_id, actor, "workspace.settings_changed", target_type="tenant_settings",
               target_id=tenant_id, before=before, after=after, origin=origin)
    return Workspace(zone, tag)


def zone_of(name: str | None) -> ZoneInfo:
    """The zone by name, UTC when the name is empty or unknown (a page never fails over a stored zone)."""
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def as_datetime(value: datetime | float | int) -> datetime:
    """A moment as an aware datetime; epoch seconds and naive datetimes are UTC."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def format_local(value: datetime | float | int | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """The moment in ``zone`` as ``fmt`` followed by the zone's abbreviation ("2026-03-05 14:02 CET")."""
    if value is None or value == "":
        return ""
    local = as_datetime(value).astimezone(zone)
    text = local.strftime(fmt)
    return text if "%Z" in fmt else f"{text} {local.strftime('%Z')}"


def format_local_date(value: datetime | float | int | None, zone: ZoneInfo, fmt: str = "%d %b %Y") -> str:
    """The moment's calendar date in ``zone`` (no abbreviation: a date reads the same everywhere)."""
    if value is None or value == "":
        return ""
    return as_datetime(value).astimezone(zone).strftime(fmt)


def workspace_zone() -> ZoneInfo:
    """The current request's workspace zone (read once per request); UTC outside a workspace."""
    if not has_request_context():
        return ZoneInfo(DEFAULT_ZONE)
    if "workspace_zone" not in g:
        zone = ZoneInfo(DEFAULT_ZONE)
        if current_tenant_id():
            try:
                zone = zone_of(load_workspace(db_session()).timezone)
            except SQLAlchemyError:
                # An error page rendered after the transaction failed still shows its times, in UTC.
                pass
        g.workspace_zone = zone
    return g.workspace_zone
