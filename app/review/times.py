"""How review pages say when something happened: "Today 14:32", "Yesterday 09:05", "3 Nov", "3 Nov 2025", in the
workspace's time zone (``tenants.timezone``)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str | None) -> dt.tzinfo:
    """The named zone, or UTC when the name is empty or unknown."""
    try:
        return ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def when(moment: dt.datetime | None, tz: dt.tzinfo = dt.UTC, now: dt.datetime | None = None) -> str:
    """A moment as the reviewer lists and the timeline show it; "" for None."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    local = moment.astimezone(tz)
    today = (now or dt.datetime.now(dt.UTC)).astimezone(tz).date()
    if local.date() == today:
        return f"Today {local:%H:%M}"
    if local.date() == today - dt.timedelta(days=1):
        return f"Yesterday {local:%H:%M}"
    if local.year == today.year:
        return f"{local.day} {local:%b}"
    return f"{local.day} {local:%b %Y}"
