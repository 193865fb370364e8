"""The dashboard: each figure against the simulator's data and our own tables, ConnectWise down or not connected
(our own figures still shown, the failure said), and never "No invoices yet" beside a list of invoices."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from pathlib import Path

from app.connectwise import health
from app.invoices.models import LinkView
from app.review.models import Flag, ReviewInvoice
from app.security.crypto import FieldRef
from app.sending.models import InvoiceSend
from app.services import services_of
from app.tenancy import tenant_session
from tests.conftest import sign_in
from tests.integration.invoice_helpers import (  # noqa: F401 (fixtures)
    connected_tenant,
    htmx,
    make_link,
    sim_knobs_at_defaults,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "templates"


def _card(html: str, card_id: str) -> str:
    match = re.search(rf'<div class="card stat[^"]*" id="{card_id}">(.*?)</div>', html, re.S)
    assert match, f"no {card_id} card"
    return re.sub(r"\s+", " ", match.group(1))


def _value(card: str) -> str:
    return re.search(r'<p class="stat-value[^"]*">([^<]+)</p>', card).group(1).strip()


def _owed(sim, today: dt.date) -> tuple[int, int, Decimal, Decimal]:  # type: ignore[no-untyped-def]
    """(open, overdue, open USD, overdue USD) as the simulator's data has them."""
    invoices = sim.state.data["invoices"]
    open_n = overdue_n = 0
    open_usd = overdue_usd = Decimal(0)
    for i in invoices.ids():
        inv = invoices.get(i)
        if inv["balance"] <= 0 or inv["type"] == "CreditMemo" or "void" in inv["status"]["name"].lower():
            continue
        usd = inv["currency"]["currencyCode"] == "USD"
        balance = Decimal(str(inv["balance"]))
        open_n += 1
        open_usd += balance if usd else 0
        if inv.get("dueDate") and inv["dueDate"][:10] < today.isoformat():
            overdue_n += 1
            overdue_usd += balance if usd else 0
    return open_n, overdue_n, open_usd, overdue_usd


def _usd(amount: Decimal) -> str:
    return f"${amount.quantize(Decimal('0.01')):,}"


def _seed_own_tables(app, tenant_id) -> None:  # type: ignore[no-untyped-def]
    keyring = services_of(app).keyring
    now = dt.datetime.now(dt.UTC)
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        rows = [(101, "needs_review", True, 2), (102, "needs_review", True, 0), (103, "approved", True, 1),
                (104, "needs_review", False, 0)]  # 104 left the open set: not counted
        for invoice_id, state, is_open, blocking in rows:
            session.add(ReviewInvoice(id=uuid.uuid4(), tenant_id=tenant_id, invoice_id=invoice_id,
                                      invoice_number=f"INV-{invoice_id}", company_name="Client", display_type="Standard",
                                      total=Decimal("10"), currency="USD", status_name="New", state=state,
                                      is_open=is_open, blocking_flags=blocking, open_flags=blocking, worst_flag=0))
        flags = [(101, "error", None, None), (101, "warning", None, None), (103, "error", None, None),
                 (102, "info", None, None), (101, "warning", now, None),  # cleared: not counted
                 (103, "warning", None, now),  # marked OK: not counted
                 (104, "error", None, None)]  # of an invoice no longer open: not counted
        for n, (invoice_id, severity, cleared, marked) in enumerate(flags):
            flag = Flag(id=uuid.uuid4(), tenant_id=tenant_id, invoice_id=invoice_id, invoice_number=f"INV-{invoice_id}",
                        rule=f"rule{n}", target_type="invoice", target_id=invoice_id, severity=severity,
                        cleared_at=cleared, marked_ok_at=marked)
            flag.message_enc = keyring.encrypt("a message", FieldRef(tenant_id, "review_flags", flag.id, "message"))
            session.add(flag)
        sends = [("failed", None, "No bill-to contact", None, now), ("sent", "bounced", None, "mailbox full", now),
                 ("sent", "delivered", None, None, now), ("sent", "complained", None, None, now),
                 ("failed", None, "old", None, now - dt.timedelta(days=45))]  # outside the 30 days
        for n, (status, delivery, reason, delivery_reason, created) in enumerate(sends):
            session.add(InvoiceSend(id=uuid.uuid4(), tenant_id=tenant_id, invoice_id=200 + n,
                                    invoice_number=f"INV-20{n}", kind="invoice", status=status, reason=reason,
                                    delivery=delivery, delivery_reason=delivery_reason, created_at=created))


def test_each_figure_matches_connectwise_and_our_own_tables(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    _seed_own_tables(app, t.id)
    token = make_link(client, 3)
    visitor = app.test_client()
    assert visitor.get(f"/i/{token}").status_code == 200 and visitor.get(f"/i/{token}").status_code == 200
    with tenant_session(t.id, app.extensions["session_factory"]) as session:  # a view from before this week
        session.add(LinkView(tenant_id=t.id, invoice_id=4, total=Decimal(1), kind="page", viewer="client",
                             link_id=session.query(LinkView.link_id).filter(LinkView.link_id.is_not(None)).first()[0],
                             viewed_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=8)))
    assert "Never tested" in client.get("/").get_data(as_text=True)
    assert client.post("/settings/connectwise/test", headers=htmx(client)).status_code == 200
    html = client.get("/").get_data(as_text=True)

    open_n, overdue_n, open_usd, overdue_usd = _owed(sim, dt.date.today())
    assert open_n and overdue_n
    opened, overdue = _card(html, "dash-open"), _card(html, "dash-overdue")
    assert _value(opened) == f"{open_n:,}" and _usd(open_usd) in opened
    assert _value(overdue) == f"{overdue_n:,}" and _usd(overdue_usd) in overdue

    review = _card(html, "dash-review")
    assert _value(review) == "2" and "2 flagged" in review
    assert "2 errors" in review and "1 warning<" in review and "1 info" in review

    views = _card(html, "dash-views")
    assert _value(views) == "2" and "1 invoice opened" in views  # two client views of one invoice, staff not

    failed = _card(html, "dash-failed")
    assert _value(failed) == "3"
    assert "Not sent: No bill-to contact" in failed and "Bounced: mailbox full" in failed and "Complained" in failed

    connection = _card(html, "dash-connection")
    assert "Answering" in connection and "Last connection test passed" in connection
    assert "No invoices yet" not in html and "could not be read" not in html


def test_the_figures_come_through_the_short_connectwise_cache(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    client.get("/")
    before = len(sim.requests)
    html = client.get("/").get_data(as_text=True)
    invoice_reads = [r for r in sim.requests[before:] if "/finance/invoices" in r.path]
    assert invoice_reads == [] and "Answering" in html  # a second visit within the minute asks nothing again


def test_connectwise_down_still_shows_our_own_figures_and_says_what_failed(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    _seed_own_tables(app, t.id)
    assert "Answering" in client.get("/").get_data(as_text=True)
    sim.configure(error_rate=1.0, error_status=502)
    redis = services_of(app).redis
    redis.delete(*redis.keys(f"bi:cw:cache:{t.id}:*"))  # the cached figures age out, as they do after a minute
    # The last good answer is older than the probe interval.
    health.note(redis, t.id, True, at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    connection = _card(html, "dash-connection")
    assert "Not answering" in connection and "Answering<" not in connection and "ConnectWise" in connection
    assert "ConnectWise could not be read" in html
    assert _value(_card(html, "dash-review")) == "2" and _value(_card(html, "dash-failed")) == "3"
    assert _value(_card(html, "dash-open")) == "—"
    # It says so on every visit until ConnectWise answers again, then says that.
    assert "Not answering" in client.get("/").get_data(as_text=True)
    sim.configure(error_rate=0.0)
    assert "Answering" in _card(client.get("/").get_data(as_text=True), "dash-connection")


def test_a_broken_connection_found_by_another_call_is_not_shown_as_connected(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    client.get("/")  # figures cached
    sim.configure(revoked=True)  # the API member's keys were revoked in ConnectWise
    health.note(services_of(app).redis, t.id, True, at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2))
    html = client.get("/").get_data(as_text=True)
    connection = _card(html, "dash-connection")
    assert "Not answering" in connection, connection


def test_without_a_connection_our_own_figures_show_beside_the_way_to_connect(app, client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    _seed_own_tables(app, t.id)
    html = client.get("/").get_data(as_text=True)
    assert "Connect ConnectWise" in html
    assert _value(_card(html, "dash-review")) == "2" and _value(_card(html, "dash-failed")) == "3"
    assert 'id="dash-open"' not in html and "No invoices yet" not in html


def test_no_template_says_something_arrives_next():
    offenders = [str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html")
                 if re.search(r"arrives? next|coming soon", p.read_text(), re.I)]
    assert offenders == []


def test_a_page_read_that_finds_the_keys_revoked_makes_the_dashboard_say_not_answering(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    redis = services_of(app).redis
    assert "Answering" in _card(client.get("/").get_data(as_text=True), "dash-connection")
    assert health.last(redis, t.id).ok  # just checked: the dashboard would not probe again for a minute
    sim.configure(revoked=True)  # the API member's keys were revoked in ConnectWise
    page = client.get("/invoices/3")  # an invoice page: its own read finds the keys refused
    assert page.status_code >= 400 and "refused the API keys" in page.get_data(as_text=True)
    recorded = health.last(redis, t.id)  # recorded by that read, before the dashboard asked anything
    assert recorded is not None and not recorded.ok and "refused the API keys" in recorded.detail
    connection = _card(client.get("/").get_data(as_text=True), "dash-connection")
    assert "Not answering" in connection and "refused the API keys" in connection, connection
