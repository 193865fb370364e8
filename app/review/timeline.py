"""An invoice's activity timeline: our events merged with ConnectWise's own audit trail, in time order.

Both kinds live in ``review_events``: ours as they happen (``app.review.events``), ConnectWise's copied in by
``fetch_connectwise`` (kind "connectwise", actor a ConnectWise member, ``source_key`` a hash of the entry's date,
author and text, so a re-read adds each entry once). The feed is then one indexed query, and the review page never
calls ConnectWise: the page's refresh reads the trail (one request; more only for a trail longer than 1,000 entries,
at most ``MAX_PAGES``). The callback-triggered rescan does not read it: a change in ConnectWise raises the page's
banner, and the refresh it offers reads the trail then, so the tenant's request budget goes to invoices nobody is
looking at only for what the review needs.

The feed runs oldest first: it reads as a conversation, with the comment box under it (product reference §2.8.9),
and the newest entry sits beside the box where the next one will appear. The newest ``SHOWN`` entries are shown.

What the timeline reads from each kind's ``detail`` (writers: use these keys):
``approved``: ``joined``, ``confirmed_flags``, ``outcome`` (all optional); ``rejected``/``unapproved``/``closed``:
``reason`` (optional); ``status_changed``: ``status`` (the name);
``reviewer_added``/``reviewer_removed``: ``name``; ``flag_marked_ok``/``flag_unmarked``: ``rule`` (the rule key; its
name is looked up) or ``rule_name``; ``writeback_*``: ``status``, ``reason``, and for a conflict ``theirs`` and
``by``; ``commented``: ``text``, ``mentions``, ``emailed`` (``app.review.comments``); ``edited``: ``what``,
``before``, ``after``; ``connectwise``: ``text``.

The last fetch's outcome is kept in Redis per tenant and invoice (``FETCH_STATUS_TTL``): when it failed, the
timeline says "ConnectWise history could not be loaded: <reason>" above what was stored before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.connectwise import errors as cw_errors
from app.connectwise.client import Client
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.review import comments, events
from app.review.events import EventActor, TimelineEntry
from app.review.models import Event
from app.review.rules import RULES
from app.review.settings import settings_of
from app.review.times import when, zone
from app.services import Services
from app.tenancy import tenant_session
from app.tenants.models import TenantSettings
from app.users.models import User

log = logging.getLogger(__name__)

TRAIL_PATH = "system/audittrail"
PAGE_SIZE = 1000
MAX_PAGES = 3  # ConnectWise answers newest first: a longer trail keeps its newest 3,000 entries
SHOWN = 200
FETCH_STATUS_TTL = 7 * 24 * 3600
REASON_LIMIT = 300
CONNECTWISE = "connectwise"


@dataclass(frozen=True)
class TrailEntry:
    """One ConnectWise audit-trail entry as read."""

    at: dt.datetime
    by: str
    text: str
    sub_type: str
    source: str

    def key(self, occurrence: int = 0) -> str:
        """Stable identity: the same entry read again gives the same key (identical twins get 1, 2, ...)."""
        raw = json.dumps([self.at.isoformat(), self.by, self.text, occurrence], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()


# --- reading ConnectWise's trail ---------------------------------------------------------------------------


def fetch_connectwise(services: Services, tenant_id: uuid.UUID | str, invoice_id: int, *, for_page: bool = True,
                      client_options: Mapping[str, Any] | None = None) -> int:
    """Read the invoice's ConnectWise audit trail and keep the entries not yet kept; returns how many are new.
    Called by the review page's refresh (the page itself never calls ConnectWise). A failure keeps nothing new,
    returns 0, and is remembered for the timeline to say."""
    invoice_id = int(invoice_id)
    try:
        with tenant_session(tenant_id, services.session_factory) as session:
            if not settings_of(session, tenant_id).storage_enabled:
                return 0
            client = tenant_client(session, services.keyring, services.config, services.redis, for_page=for_page,
                                   **dict(client_options or {}))
        with client:
            rows = read_trail(client, invoice_id)
    except NotConnected:
        return _failed(services, tenant_id, invoice_id, "ConnectWise is not connected.", None)
    except cw_errors.ConnectWiseError as exc:
        return _failed(services, tenant_id, invoice_id, str(exc), exc)
    entries, unreadable = parse_trail(rows)
    added = _keep(services, tenant_id, invoice_id, entries)
    _remember(services, tenant_id, invoice_id, {"ok": True, "at": _now().isoformat(), "added": added,
                                                 "unreadable": unreadable})
    log.info("review timeline: %d ConnectWise entries read, %d new, %d unreadable", len(entries), added, unreadable,
             extra={"event": "review.timeline_fetched"})
    return added


def read_trail(client: Client, invoice_id: int) -> list[Any]:
    """The invoice's trail as ConnectWise sends it (newest first), never from the cache; at most ``MAX_PAGES``."""
    rows: list[Any] = []
    for page in range(1, MAX_PAGES + 1):
        body = client.get(TRAIL_PATH, {"type": "Invoice", "id": invoice_id, "pageSize": PAGE_SIZE, "page": page},
                          cache=False)
        if not isinstance(body, list):
            raise cw_errors.MalformedResponse("ConnectWise answered the audit trail with something other than a list")
        rows.extend(body)
        if len(body) < PAGE_SIZE:
            break
    return rows


def parse_trail(rows: Iterable[Any]) -> tuple[list[TrailEntry], int]:
    """The readable entries, and how many were not (no date we can read, no text)."""
    entries, unreadable = [], 0
    for row in rows:
        at = _moment(row.get("enteredDate")) if isinstance(row, dict) else None
        text = row.get("text") if isinstance(row, dict) else None
        if at is None or not isinstance(text, str) or not text.strip():
            unreadable += 1
            continue
        entries.append(TrailEntry(at, _text(row.get("enteredBy")) or "ConnectWise", text.strip(),
                                  _text(row.get("auditSubType")), _text(row.get("auditSource"))))
    return entries, unreadable


def _text(value: Any) -> str:
    return value.strip()[:200] if isinstance(value, str) else ""


def _moment(raw: Any) -> dt.datetime | None:
    """ConnectWise's "2025-06-24T09:00:00Z" (UTC; an offset or fractions are read too, no zone means UTC)."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _keep(services: Services, tenant_id: uuid.UUID | str, invoice_id: int, entries: list[TrailEntry]) -> int:
    """Add the entries not kept yet; a concurrent fetch that kept some first is read again, not an error."""
    keyed: dict[str, TrailEntry] = {}
    twins: dict[tuple[dt.datetime, str, str], int] = {}
    for entry in entries:
        same = (entry.at, entry.by, entry.text)
        twins[same] = twins.get(same, -1) + 1
        keyed[entry.key(twins[same])] = entry
    if not keyed:
        return 0
    for attempt in (1, 2):
        try:
            with tenant_session(tenant_id, services.session_factory) as session:
                kept = set(session.execute(select(Event.source_key).where(
                    Event.invoice_id == invoice_id, Event.source_key.in_(list(keyed)))).scalars())
                new = [(key, entry) for key, entry in keyed.items() if key not in kept]
                for key, entry in new:
                    detail = {"text": entry.text, "type": entry.sub_type, "source": entry.source}
                    event = events.add(session, services.keyring, tenant_id, invoice_id, CONNECTWISE,
                                       EventActor("member", None, entry.by), detail, at=entry.at)
                    event.source_key = key
            return len(new)
        except IntegrityError:
            if attempt == 2:
                raise
    return 0


def _failed(services: Services, tenant_id: uuid.UUID | str, invoice_id: int, reason: str,
            exc: cw_errors.ConnectWiseError | None) -> int:
    log.warning("review timeline: ConnectWise audit trail not read", extra={
        "event": "review.timeline_fetch_failed", "error": type(exc).__name__ if exc else "NotConnected",
        "status": getattr(exc, "status", None)})
    _remember(services, tenant_id, invoice_id, {"ok": False, "at": _now().isoformat(),
                                                 "reason": reason[:REASON_LIMIT]})
    return 0


def _status_key(tenant_id: uuid.UUID | str, invoice_id: int) -> str:
    return f"bi:review:cwtrail:{uuid.UUID(str(tenant_id))}:{int(invoice_id)}"


def _remember(services: Services, tenant_id: uuid.UUID | str, invoice_id: int, status: dict[str, Any]) -> None:
    try:
        services.redis.set(_status_key(tenant_id, invoice_id), json.dumps(status), ex=FETCH_STATUS_TTL)
    except Exception:  # the status is a courtesy; losing it must not fail the refresh
        log.warning("review timeline: could not keep the fetch status", extra={"event": "review.timeline_status"})


def last_fetch(services: Services, tenant_id: uuid.UUID | str, invoice_id: int) -> dict[str, Any] | None:
    """The last fetch's outcome (``ok``, ``at``, ``reason`` or ``added``), or None when none is remembered."""
    try:
        raw = services.redis.get(_status_key(tenant_id, invoice_id))
    except Exception:
        return None
    if not raw:
        return None
    try:
        status = json.loads(raw)
    except ValueError:
        return None
    return status if isinstance(status, dict) else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- the feed --------------------------------------------------------------------------------------------


def panel(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice_id: int,
          user: Any) -> dict[str, Any]:
    """What ``review/_timeline.html`` shows: the merged entries, oldest first."""
    tz = _zone(session, tenant_id)
    stored = events.of_invoice(session, services.keyring, invoice_id)
    hidden = max(0, len(stored) - SHOWN)
    stored = stored[hidden:]
    names = _member_names(session, {e.actor.name for e in stored if e.kind == CONNECTWISE})
    me = str(getattr(user, "id", "") or "")
    now = _now()
    entries = [_entry(e, tz, now, names, me) for e in stored]
    status = last_fetch(services, tenant_id, invoice_id)
    failed = status is not None and not status.get("ok")
    read_at = _moment(status.get("at")) if status else None
    return {
        "invoice_id": invoice_id,
        "entries": entries,
        "hidden": hidden,
        "cw_error": str(status.get("reason") or "ConnectWise did not answer.") if failed and status else None,
        "cw_read_when": when(read_at, tz, now) if read_at and not failed else "",
        "cw_never_read": status is None and not any(e["source"] == CONNECTWISE for e in entries),
    }


def _zone(session: Session, tenant_id: uuid.UUID | str) -> dt.tzinfo:
    row = session.get(TenantSettings, uuid.UUID(str(tenant_id)))
    return zone(row.timezone if row is not None else None)


def _member_names(session: Session, identifiers: set[str]) -> dict[str, str]:
    """ConnectWise identifiers ("lmartin") of members who are users here, to their names ("Laura Martin")."""
    if not identifiers:
        return {}
    rows = session.execute(select(User.cw_identifier, User.name).where(User.cw_identifier.in_(sorted(identifiers))))
    return {ident: name.strip() for ident, name in rows if ident and name and name.strip()}


def _entry(e: TimelineEntry, tz: dt.tzinfo, now: dt.datetime, names: Mapping[str, str], me: str) -> dict[str, Any]:
    detail = e.detail
    source = CONNECTWISE if e.kind == CONNECTWISE else "ours"
    name = e.actor.name or "Someone"
    handle = ""
    if source == CONNECTWISE and name in names:
        name, handle = names[name], name
    phrase, note, tone = _words(e.kind, detail)
    local = e.at.astimezone(tz)
    return {
        "id": str(e.id),
        "kind": e.kind,
        "source": source,
        "actor": {"type": e.actor.type, "name": name, "handle": handle, "initials": _initials(name)},
        "phrase": phrase,
        "note": note,
        "body": _str(detail.get("text")) if e.kind == "commented" else "",
        # --- comments (issue 13): the text in pieces with mention chips, and whom it was also mailed to ---
        "segments": comments.segments(detail) if e.kind == "commented" else [],
        "sent_to": comments.sent_to(detail) if e.kind == "commented" else "",
        "tone": tone,
        "badge": {"approved": "approved", "rejected": "rejected"}.get(e.kind, ""),
        "mine": e.actor.type == "user" and bool(me) and e.actor.id == me,
        "when": when(e.at, tz, now),
        "iso": e.at.astimezone(dt.UTC).isoformat(),
        "exact": f"{local:%d %b %Y %H:%M:%S} {local.tzname() or ''}".strip(),
    }


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value))


def _rule_name(detail: Mapping[str, Any]) -> str:
    if detail.get("rule_name"):
        return _str(detail["rule_name"])
    spec = RULES.get(detail.get("rule", "")) if isinstance(detail.get("rule"), str) else None
    return spec.name if spec is not None else _str(detail.get("rule"))


def _words(kind: str, detail: Mapping[str, Any]) -> tuple[str, str, str]:
    """(phrase, note, tone) for one entry; the note is what the entry says beyond its phrase."""
    status, reason = _str(detail.get("status")), _str(detail.get("reason"))
    if kind == CONNECTWISE:
        return _str(detail.get("text")), "", ""
    if kind == "viewed":
        return "viewed", "", ""
    if kind == "approved":
        return "approved", _approval_note(detail), "ok"
    if kind == "unapproved":
        return "undid their approval", reason, ""
    if kind == "rejected":
        return "rejected", reason, "err"
    if kind == "closed":
        return "closed the review", reason, ""
    if kind == "reopened":
        return "reopened the review", reason, ""
    if kind == "status_changed":
        return f"changed status → {status or 'another status'}", reason, ""
    if kind == "reviewer_added":
        return f"added {_str(detail.get('name')) or 'someone'} as reviewer", "", ""
    if kind == "reviewer_removed":
        return f"removed {_str(detail.get('name')) or 'a reviewer'}", "", ""
    if kind == "flag_marked_ok":
        return "marked a flag OK", _rule_name(detail), ""
    if kind == "flag_unmarked":
        return "unmarked a flag (no longer OK)", _rule_name(detail), ""
    if kind == "writeback_succeeded":
        return f"set the status in ConnectWise → {status}", "", "ok"
    if kind == "writeback_failed":
        return f"could not set the status in ConnectWise → {status}", reason, "err"
    if kind == "writeback_conflict":
        theirs, by = _str(detail.get("theirs")), _str(detail.get("by"))
        changed = f"ConnectWise shows {theirs}" + (f" (set by {by})" if by else "") if theirs else ""
        return f"did not overwrite the status in ConnectWise with {status}", " · ".join(
            part for part in (changed, reason) if part), "warn"
    if kind == "commented":
        return "commented", "", ""
    if kind == "edited":
        what, before, after = _str(detail.get("what")), _str(detail.get("before")), _str(detail.get("after"))
        change = f"{before} → {after}" if before or after else ""
        return f"edited {what}" if what else "edited the invoice", change, ""
    return kind.replace("_", " "), "", ""


def _approval_note(detail: Mapping[str, Any]) -> str:
    """What an approval carried: joining the reviewers, open flags confirmed, the chain completed."""
    parts = []
    if detail.get("joined"):
        parts.append("joined the reviewers")
    flags = detail.get("confirmed_flags")
    if isinstance(flags, int) and flags > 0:
        parts.append(f"confirmed {flags} open flag{'s' if flags != 1 else ''}")
    if detail.get("outcome") == "approved":
        parts.append("every reviewer has approved: the invoice is approved")
    return " · ".join(parts)


def _initials(name: str) -> str:
    words = [w for w in name.replace(".", " ").replace("_", " ").split() if w[:1].isalnum()]
    if not words:
        return "?"
    letters = words[0][0] + (words[-1][0] if len(words) > 1 else words[0][1:2])
    return letters.upper()
