"""The dashboard's figures: money owed from ConnectWise (through the client's short cache), and from our own tables
the review's state, the clients' link views this week and the sends that failed; with the connection's real state.

Our own figures never wait on ConnectWise: when it is down or not connected they are still shown, and what failed is
said in words. The connection's state is the last real call's outcome (``app.connectwise.health``): a probe that
skips the cache runs when the last outcome is older than ``PROBE_EVERY_SECONDS``, and the dashboard's own read
records its outcome too, so a broken connection never reads "Connected".
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import distinct, func, or_, select
from sqlalchemy.orm import Session

from app.connectwise import errors as cw_errors
from app.connectwise import health
from app.connectwise.client import Client
from app.connectwise.connection import get_connection
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.invoices.listing import Receivables, receivables
from app.invoices.models import LinkView
from app.review.models import Flag, ReviewInvoice
from app.sending.models import InvoiceSend
from app.services import Services

PROBE_EVERY_SECONDS = 60
WEEK = dt.timedelta(days=7)
FAILED_SENDS_DAYS = 30
FAILED_DELIVERY = ("failed", "bounced", "complained")
SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class ConnectionState:
    connected: bool  # a connection is saved
    ok: bool | None = None  # did the last real call answer (None: no call recorded yet)
    at: dt.datetime | None = None
    detail: str = ""
    test_ok: bool | None = None  # the last "Test connection"
    test_at: dt.datetime | None = None


@dataclass(frozen=True)
class FailedSend:
    invoice_id: int
    invoice_number: str
    why: str
    at: dt.datetime


@dataclass(frozen=True)
class Figures:
    connection: ConnectionState
    money: Receivables | None = None
    money_error: str = ""  # why ConnectWise's figures are missing
    needs_review: int = 0
    flagged: int = 0
    flags: dict[str, int] = field(default_factory=dict)  # open flags of open invoices, by severity
    link_views: int = 0  # clients' views of public links in the last 7 days
    linked_invoices_viewed: int = 0
    failed_sends: int = 0  # in the last FAILED_SENDS_DAYS days
    recent_failures: list[FailedSend] = field(default_factory=list)


def figures(services: Services, session: Session, tenant_id: uuid.UUID | str, now: dt.datetime | None = None) -> Figures:
    """Everything the dashboard shows. Our own tables first; ConnectWise last, and its failures are caught."""
    now = now or dt.datetime.now(dt.UTC)
    own = _own_figures(session, now)
    connection, money, money_error = _connectwise(services, session, tenant_id, now)
    return Figures(connection=connection, money=money, money_error=money_error, **own)


def _own_figures(session: Session, now: dt.datetime) -> dict[str, Any]:
    r = ReviewInvoice
    needs_review, flagged = session.execute(
        select(func.count().filter(r.state == "needs_review"), func.count().filter(r.blocking_flags > 0))
        .where(r.is_open)).one()
    flags = dict(session.execute(
        select(Flag.severity, func.count()).join(ReviewInvoice, ReviewInvoice.invoice_id == Flag.invoice_id)
        .where(ReviewInvoice.is_open, Flag.cleared_at.is_(None), Flag.marked_ok_at.is_(None))
        .group_by(Flag.severity)).tuples().all())
    views, viewed = session.execute(
        select(func.count(), func.count(distinct(LinkView.invoice_id)))
        .where(LinkView.viewer == "client", LinkView.link_id.is_not(None), LinkView.viewed_at >= now - WEEK)).one()
    failed = or_(InvoiceSend.status == "failed", InvoiceSend.delivery.in_(FAILED_DELIVERY))
    since = now - dt.timedelta(days=FAILED_SENDS_DAYS)
    failed_count = session.execute(select(func.count()).select_from(InvoiceSend)
                                   .where(failed, InvoiceSend.created_at >= since)).scalar_one()
    recent = session.execute(select(InvoiceSend).where(failed, InvoiceSend.created_at >= since)
                             .order_by(InvoiceSend.created_at.desc()).limit(5)).scalars().all()
    return {"needs_review": needs_review, "flagged": flagged,
            "flags": {s: flags.get(s, 0) for s in SEVERITIES}, "link_views": views,
            "linked_invoices_viewed": viewed, "failed_sends": failed_count,
            "recent_failures": [FailedSend(s.invoice_id, s.invoice_number or str(s.invoice_id), _why(s),
                                           s.delivery_at or s.sent_at or s.created_at) for s in recent]}


def _why(send: InvoiceSend) -> str:
    if send.delivery in FAILED_DELIVERY:
        reason = f": {send.delivery_reason}" if send.delivery_reason else ""
        return f"{send.delivery.capitalize()}{reason}"
    return f"Not sent: {send.reason}" if send.reason else "Not sent"


def _connectwise(services: Services, session: Session, tenant_id: uuid.UUID | str,
                 now: dt.datetime) -> tuple[ConnectionState, Receivables | None, str]:
    conn = get_connection(session)
    if conn is None:
        return ConnectionState(connected=False), None, ""
    test = {"test_ok": conn.last_test_ok, "test_at": conn.last_test_at}
    redis = services.redis
    known = health.last(redis, tenant_id)
    try:
        with tenant_client(session, services.keyring, services.config, redis) as client:
            # A recorded failure is asked again at every visit: the page must not go on saying it is broken.
            probe = known is None or not known.ok or known.age_seconds(now) >= PROBE_EVERY_SECONDS
            calls: list[Callable[[], Any]] = [lambda: _attempt(lambda: receivables(client, now.date()))]
            if probe:
                calls.append(lambda: _attempt(lambda: _probe(client)))
            results = client.parallel(calls)
    except NotConnected:
        return ConnectionState(connected=False), None, ""
    except cw_errors.ConnectWiseError as exc:  # finding the site's API failed before any read
        outcome = _record(redis, tenant_id, exc, now)
        return _state(outcome, test), None, str(exc)
    money, money_exc = results[0]
    outcome = known
    if probe:
        outcome = _record(redis, tenant_id, results[1][1], now)
    if money_exc is not None and not isinstance(money_exc, cw_errors.Busy):
        outcome = _record(redis, tenant_id, money_exc, now)
    return _state(outcome, test), money, str(money_exc) if money_exc is not None else ""


def _attempt(call: Callable[[], Any]) -> tuple[Any, cw_errors.ConnectWiseError | None]:
    try:
        return call(), None
    except cw_errors.ConnectWiseError as exc:
        return None, exc


def _probe(client: Client) -> None:
    client.get("system/info", cache=False)


def _record(redis: Any, tenant_id: uuid.UUID | str, exc: cw_errors.ConnectWiseError | None,
            now: dt.datetime) -> health.Outcome | None:
    if isinstance(exc, cw_errors.Busy):  # our own budget said wait: ConnectWise was not asked
        return health.last(redis, tenant_id)
    return health.note(redis, tenant_id, exc is None, str(exc) if exc is not None else "", at=now)


def _state(outcome: health.Outcome | None, test: dict[str, Any]) -> ConnectionState:
    if outcome is None:
        return ConnectionState(connected=True, **test)
    return ConnectionState(connected=True, ok=outcome.ok, at=outcome.at, detail=outcome.detail, **test)
