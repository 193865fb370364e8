"""The rules about the time on an invoice: notes, non-billable and stale entries, watched work types, hours
outliers and rates that differ from the usual. Each is a pure function of an ``InvoiceView``, its settings and the
optional ``History``, yielding ``Finding``s."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from app.connectwise.records import TimeRecord
from app.review.rules.history import History
from app.review.rules.invoice import (
    InvoiceView,
    billable,
    day,
    number,
    percent,
    plural,
    quote,
    reads,
    time_label,
)
from app.review.rules.model import Finding

Settings = Mapping[str, Any]
HOURS = ("actualHours", "invoiceHours", "hoursBilled")
NOT_BILLED = {"NoCharge": "No Charge", "DoNotBill": "Do Not Bill"}


def _billable(view: InvoiceView) -> list[TimeRecord]:
    return [t for t in billable(view.times) if reads(t, "billableOption")]


def ticket_no_notes(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    empty: dict[int, list[TimeRecord]] = defaultdict(list)
    for t in _billable(view):
        if t.ticket_id is not None and reads(t, "notes") and not t.notes.strip():
            empty[t.ticket_id].append(t)
    for ticket_id, entries in empty.items():
        summary = quote(entries[0].ticket_summary, "")
        hours = sum((t.hours for t in entries), Decimal(0))
        yield Finding("ticket_no_notes", "warning", "ticket", ticket_id,
                      f"Ticket #{ticket_id}{' ' + summary if summary else ''} bills {view.hours(hours)} in "
                      f"{len(entries)} time {'entry' if len(entries) == 1 else 'entries'} with no notes")


def insufficient_notes(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    minimum = int(cfg["min_chars"])
    for t in _billable(view):
        length = len(t.notes.strip())
        if reads(t, "notes") and 0 < length < minimum:
            yield Finding("insufficient_notes", "warning", "time_entry", t.id,
                          f"Notes on {time_label(view, t)} are {plural(length, 'character')}, below your minimum "
                          f"of {minimum}")


def non_billable_time(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    for t in view.times:
        if t.billable in NOT_BILLED and reads(t, "billableOption"):
            yield Finding("non_billable_time", "info", "time_entry", t.id,
                          f"{time_label(view, t, t.actual_hours)} is marked {NOT_BILLED[t.billable]} and appears "
                          f"on the invoice")


def stale_time(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    limit, invoice_day = int(cfg["days"]), view.header.date
    if invoice_day is None:
        return
    for t in _billable(view):
        if t.date is None or not reads(t, "timeStart"):
            continue
        age = (invoice_day - t.date).days
        if age > limit:
            yield Finding("stale_time", "warning", "time_entry", t.id,
                          f"{time_label(view, t)} was worked {age} days before the invoice date "
                          f"({day(invoice_day)}), more than your {limit} days")


def flagged_work_type(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    watched = {w.casefold() for w in cfg["work_types"]}
    if not watched:
        return
    for t in _billable(view):
        if t.work_type and t.work_type.casefold() in watched and reads(t, "workType/name"):
            yield Finding("flagged_work_type", "warning", "time_entry", t.id,
                          f"{time_label(view, t)} is billed as work type {quote(t.work_type, '')}, which is on "
                          f"your watch list")


def hours_outlier(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    limit = Decimal(cfg["max_hours"])
    for t in view.times:
        hours = max(t.hours, t.actual_hours)
        if hours > limit and reads(t, *HOURS):
            yield Finding("hours_outlier", "warning", "time_entry", t.id,
                          f"One time entry of {time_label(view, t, hours)} is above your {number(limit)} h "
                          f"threshold")


def rate_differs(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    if history is None:
        return
    threshold = Decimal(cfg["threshold_percent"])
    for t in _billable(view):
        if t.rate <= 0 or not t.work_role or not reads(t, "hourlyRate", "workRole/name"):
            continue
        usual = history.usual_rates.get((view.currency.code, t.work_role))
        if usual is None or usual <= 0:
            continue
        change = (t.rate - usual) / usual * 100
        if abs(change) > threshold:
            yield Finding("rate_differs", "info", "time_entry", t.id,
                          f"Rate {view.money(t.rate)}/h for {quote(t.work_role, '')} on {time_label(view, t)} is "
                          f"{percent(abs(change))} {'above' if change > 0 else 'below'} the usual "
                          f"{view.money(usual)}/h (your threshold is {number(threshold)} %)")
