"""The tenant's audit log page (owners and admins): rows as sentences, filtered by person, action and dates (in the
workspace's zone), 50 a page, newest first (keyset on id); htmx appends the next page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import and_, func, select

from app.audit.models import AuditEntry
from app.audit.sentences import Context, action_label, actor_name, sentence
from app.auth.roles import permission_page
from app.review.models import ReviewInvoice
from app.sending.models import InvoiceSend
from app.tenancy import db_session
from app.tenants.workspace import workspace_zone
from app.users.models import User
from app.views.htmx import wants_partial

bp = Blueprint("audit", __name__, url_prefix="/settings/audit-log")
PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    person: str = ""  # "user:<id>" or "label:<actor label>" (system actors, support staff)
    action: str = ""
    date_from: date | None = None
    date_to: date | None = None
    errors: tuple[str, ...] = ()

    def args(self) -> dict[str, str]:
        """The filters as query arguments, for the next page's link."""
        out = {"person": self.person, "action": self.action,
               "from": self.date_from.isoformat() if self.date_from else "",
               "to": self.date_to.isoformat() if self.date_to else ""}
        return {k: v for k, v in out.items() if v}


def _date(raw: str | None, label: str, errors: list[str]) -> date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(f"{label} is not a date: use the date picker, or type it like 2026-03-31.")
        return None


def _filters() -> Filters:
    errors: list[str] = []
    date_from = _date(request.args.get("from"), "From", errors)
    date_to = _date(request.args.get("to"), "To", errors)
    if date_from and date_to and date_from > date_to:
        errors.append("The From date is after the To date.")
    return Filters((request.args.get("person") or "").strip()[:400], (request.args.get("action") or "").strip()[:100],
                   date_from, date_to, tuple(errors))


def _where(f: Filters) -> list[Any]:
    zone = workspace_zone()
    clauses: list[Any] = []
    kind, _, value = f.person.partition(":")
    if kind == "user" and value:
        clauses.append(AuditEntry.actor_id == value)
    elif kind == "label" and value:
        clauses.append(and_(AuditEntry.actor_type != "user", AuditEntry.actor_label == value))
    if f.action:
        clauses.append(AuditEntry.action == f.action)
    # Dates are the workspace's calendar days, so "31 March" means midnight to midnight where the team is.
    if f.date_from:
        clauses.append(AuditEntry.created_at >= datetime.combine(f.date_from, time(), zone))
    if f.date_to:
        clauses.append(AuditEntry.created_at < datetime.combine(f.date_to + timedelta(days=1), time(), zone))
    return clauses


def _invoice_ids(rows: list[AuditEntry]) -> set[int]:
    """Invoices the rows name by id only (no number in the row)."""
    ids: set[int] = set()
    for row in rows:
        data = {**(row.before or {}), **(row.after or {})}
        if data.get("invoice_number"):
            continue
        raw = data.get("invoice_id") or (row.target_id if row.target_type == "invoice" else None)
        try:
            ids.add(int(str(raw)))
        except (TypeError, ValueError):
            continue
    return ids


def _context(rows: list[AuditEntry]) -> Context:
    """One lookup of names and one of invoice numbers for the whole page (never ConnectWise)."""
    session = db_session()
    user_ids: set[uuid.UUID] = set()
    for row in rows:
        for raw in (row.actor_id if row.actor_type == "user" else None,
                    row.target_id if row.target_type == "user" else None):
            try:
                user_ids.add(uuid.UUID(str(raw)))
            except (TypeError, ValueError):
                continue
    people = {str(u.id): u.name or u.email for u in session.execute(
        select(User.id, User.name, User.email).where(User.id.in_(user_ids)))} if user_ids else {}
    numbers: dict[str, str] = {}
    ids = _invoice_ids(rows)
    if ids:
        for model in (InvoiceSend, ReviewInvoice):
            query = select(model.invoice_id, model.invoice_number).where(model.invoice_id.in_(ids),
                                                                         model.invoice_number != "")
            numbers.update({str(i): n for i, n in session.execute(query)})
    return Context(people, numbers)


def _choices() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The people and actions that appear in this account's log, for the filters."""
    session = db_session()
    actors = session.execute(
        select(AuditEntry.actor_type, AuditEntry.actor_id, func.max(AuditEntry.actor_label))
        .group_by(AuditEntry.actor_type, AuditEntry.actor_id,
                  func.coalesce(AuditEntry.actor_id, AuditEntry.actor_label))).all()
    names = {str(u.id): u.name or u.email for u in session.execute(select(User.id, User.name, User.email))}
    people: dict[str, str] = {}
    for actor_type, actor_id, label in actors:
        if actor_type == "user" and actor_id:
            people[f"user:{actor_id}"] = names.get(actor_id) or label or actor_id
        elif label:
            people[f"label:{label}"] = actor_name(actor_type, label)
    actions = session.execute(select(AuditEntry.action).distinct().order_by(AuditEntry.action)).scalars().all()
    return sorted(people.items(), key=lambda p: p[1].lower()), [(a, action_label(a)) for a in actions]


@bp.get("/")
@permission_page("view_audit_log")
def index() -> Any:
    f = _filters()
    before_id = request.args.get("before", type=int)
    rows: list[AuditEntry] = []
    more = False
    if not f.errors:
        query = select(AuditEntry).where(*_where(f)).order_by(AuditEntry.id.desc()).limit(PAGE_SIZE + 1)
        if before_id:
            query = query.where(AuditEntry.id < before_id)
        rows = list(db_session().execute(query).scalars())
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
    ctx = _context(rows)
    lines = [(row, sentence(row, ctx)) for row in rows]
    next_args = {**f.args(), "before": rows[-1].id} if more and rows else None
    status = 422 if f.errors else 200
    if wants_partial() and before_id:
        return render_template("audit/_rows.html", lines=lines, next_args=next_args, focus_first=True), status
    people, actions = _choices()
    filtered = bool(f.args())
    return render_template("audit/page.html", lines=lines, next_args=next_args, filters=f, people=people,
                           actions=actions, filtered=filtered), status
