"""Reminders against the simulator: off by default; N days before due and every M days overdue for invoices that were
sent and still have a balance in ConnectWise (read in one conditions query); never twice for a step; none once
paid; each reminder a send like any other (queued through queue_send, audited, to the invoice send's recipients);
the periodic fan-out queues a job only for workspaces with reminders on."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.jobs.queue import fetch_job
from app.sending.models import InvoiceSend, SendSettings
from app.sending.reminders import remind_all_tenants, reminders_job_id, run_reminders, step_start
from app.sending.service import recipients_of, set_recipients
from app.sending.settings import (
    DEFAULT_BODY,
    DEFAULT_REMINDER_BODY,
    DEFAULT_REMINDER_SUBJECT,
    DEFAULT_SUBJECT,
    SendConfig,
)
from app.services import services_of
from app.tenancy import tenant_session
from tests.integration.invoice_helpers import (  # noqa: F401 - sim_knobs_at_defaults is an autouse fixture
    connected_tenant,
    rebuild_afterwards,
    sim_knobs_at_defaults,
)
from tests.integration.mailgun_fake import mailgun_app, mailgun_fake  # noqa: F401

TODAY = dt.datetime.now(dt.UTC).date()
ADDRESS = "ap@client.example"


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn, request):  # type: ignore[no-untyped-def]
    rebuild_afterwards(request, sim)  # due dates and balances set here
    return connected_tenant(client, make_tenant, sim, name="Reminder Co")


def owed_invoices(sim, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    invoices = sim.state.data["invoices"]
    return [i for i in invoices.ids() if invoices.get(i)["balance"] > 0 and invoices.get(i)["type"] == "Standard"
            and "void" not in invoices.get(i)["status"]["name"].lower()][:count]


def due_in(sim, invoice_id: int, days: int) -> None:  # type: ignore[no-untyped-def]
    sim.state.data["invoices"].set_fields(invoice_id, {"dueDate": f"{TODAY + dt.timedelta(days=days)}T00:00:00Z"})


def turn_on(app, tenant, before: int | None = 3, every: int | None = 7) -> None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.add(SendSettings(tenant_id=tenant.id, subject_template=DEFAULT_SUBJECT, body_template=DEFAULT_BODY,
                                 reminder_subject_template=DEFAULT_REMINDER_SUBJECT,
                                 reminder_body_template=DEFAULT_REMINDER_BODY, reminders_enabled=True,
                                 remind_days_before=before, remind_every_days=every))


def mark_sent(app, tenant, invoice_id: int, days_ago: int = 30, status: str = "sent") -> None:  # type: ignore
    services = services_of(app)
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        row = InvoiceSend(id=uuid.uuid4(), tenant_id=tenant.id, invoice_id=invoice_id, invoice_number=f"N{invoice_id}",
                          kind="invoice", status=status, created_at=at, sent_at=at, attempts=1)
        set_recipients(services.keyring, row, [ADDRESS], ["boss@client.example"])
        session.add(row)


def reminders(app, tenant) -> list[InvoiceSend]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        rows = list(session.execute(select(InvoiceSend).where(InvoiceSend.kind == "reminder")
                                    .order_by(InvoiceSend.created_at)).scalars())
        for row in rows:
            session.expunge(row)
        return rows


def invoice_reads(sim) -> int:  # type: ignore[no-untyped-def]
    return len([r for r in sim.state.requests("/finance/invoices") if r.method == "GET"])


def test_steps_come_from_the_due_date():
    config = SendConfig(reminders_enabled=True, remind_days_before=3, remind_every_days=7)
    due = dt.date(2026, 11, 20)
    assert step_start(config, due, dt.date(2026, 11, 16)) is None
    assert step_start(config, due, dt.date(2026, 11, 17)) == dt.date(2026, 11, 17)
    assert step_start(config, due, dt.date(2026, 11, 19)) == dt.date(2026, 11, 17)
    assert step_start(config, due, due) is None  # due today: neither before nor overdue by a step
    assert step_start(config, due, dt.date(2026, 11, 26)) is None
    assert step_start(config, due, dt.date(2026, 11, 27)) == dt.date(2026, 11, 27)
    assert step_start(config, due, dt.date(2026, 12, 3)) == dt.date(2026, 11, 27)
    assert step_start(config, due, dt.date(2026, 12, 4)) == dt.date(2026, 12, 4)
    assert step_start(SendConfig(remind_days_before=3), due, dt.date(2026, 12, 4)) is None


def test_reminders_are_off_by_default_and_ask_connectwise_nothing(app, tenant, sim):
    [invoice_id] = owed_invoices(sim, 1)
    due_in(sim, invoice_id, -7)
    mark_sent(app, tenant, invoice_id)
    reads = invoice_reads(sim)
    assert run_reminders(services_of(app), str(tenant.id)) == 0
    assert reminders(app, tenant) == [] and invoice_reads(sim) == reads


def test_due_soon_and_overdue_invoices_get_one_reminder_per_step_read_in_one_query(app, tenant, sim):
    soon, overdue, later, unsent, failed = owed_invoices(sim, 5)
    due_in(sim, soon, 3)       # the step before due starts today
    due_in(sim, overdue, -7)   # first overdue step starts today
    due_in(sim, later, 20)     # no step yet
    due_in(sim, unsent, -7)    # never sent by us: none
    due_in(sim, failed, -7)    # its send failed: none
    for invoice_id in (soon, overdue, later):
        mark_sent(app, tenant, invoice_id)
    mark_sent(app, tenant, failed, status="failed")
    turn_on(app, tenant, before=3, every=7)
    services = services_of(app)
    reads = invoice_reads(sim)
    assert run_reminders(services, str(tenant.id)) == 2
    assert invoice_reads(sim) == reads + 1  # one conditions query for every candidate
    rows = reminders(app, tenant)
    assert sorted(r.invoice_id for r in rows) == sorted([soon, overdue])
    assert all(r.status == "queued" and r.kind == "reminder" for r in rows)
    assert {recipients_of(services.keyring, r) for r in rows} == {((ADDRESS,), ("boss@client.example",))}
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        audited = session.execute(select(AuditEntry).where(AuditEntry.action == "invoice.send_queued")).scalars()
        assert sorted(int(a.target_id) for a in audited if a.after.get("kind") == "reminder") == \
            sorted([soon, overdue])
    # Not twice for a step: later the same day, or the next day while the step lasts.
    assert run_reminders(services, str(tenant.id)) == 0
    assert run_reminders(services, str(tenant.id), today=TODAY + dt.timedelta(days=1)) == 0
    assert len(reminders(app, tenant)) == 2
    # A week on: the overdue one reaches its second step; the soon one is 4 days overdue, short of its first.
    assert run_reminders(services, str(tenant.id), today=TODAY + dt.timedelta(days=7)) == 1
    assert [r.invoice_id for r in reminders(app, tenant)][-1] == overdue


def test_a_paid_invoice_gets_no_more_reminders(app, tenant, sim):
    paid, owing = owed_invoices(sim, 2)
    due_in(sim, paid, -7)
    due_in(sim, owing, -7)
    mark_sent(app, tenant, paid)
    mark_sent(app, tenant, owing)
    turn_on(app, tenant, before=None, every=7)
    services = services_of(app)
    assert run_reminders(services, str(tenant.id)) == 2
    sim.state.data["invoices"].set_fields(paid, {"balance": 0})
    assert run_reminders(services, str(tenant.id), today=TODAY + dt.timedelta(days=7)) == 1
    assert [r.invoice_id for r in reminders(app, tenant)].count(paid) == 1


def test_an_invoice_sent_inside_a_step_is_not_reminded_in_that_step(app, tenant, sim):
    [invoice_id] = owed_invoices(sim, 1)
    due_in(sim, invoice_id, 2)
    mark_sent(app, tenant, invoice_id, days_ago=0)  # sent today, the day-3-before step started yesterday
    turn_on(app, tenant, before=3, every=7)
    assert run_reminders(services_of(app), str(tenant.id)) == 0


def test_turning_reminders_off_stops_them(app, tenant, sim):
    [invoice_id] = owed_invoices(sim, 1)
    due_in(sim, invoice_id, -7)
    mark_sent(app, tenant, invoice_id)
    turn_on(app, tenant)
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.execute(select(SendSettings)).scalar_one().reminders_enabled = False
    assert run_reminders(services_of(app), str(tenant.id)) == 0


def test_the_periodic_fan_out_queues_reminders_only_where_they_are_on(app, client, make_tenant, tenant, sim,
                                                                       redis_conn):
    off = connected_tenant(client, make_tenant, sim, name="Quiet Co")
    turn_on(app, tenant)
    with app.app_context():
        remind_all_tenants()
    assert fetch_job(redis_conn, reminders_job_id(str(tenant.id))) is not None
    assert fetch_job(redis_conn, reminders_job_id(str(off.id))) is None


def test_reminders_are_scheduled():
    from app.jobs.schedule import PERIODIC

    assert PERIODIC["send_reminders"][0] == "app.sending.reminders.remind_all_tenants"


def test_a_reminder_goes_out_through_mailgun_as_a_send_and_its_delivery_comes_back(
        request, mailgun_app, mailgun_fake, make_tenant, sim, monkeypatch):  # noqa: F811
    import json
    import re
    import time

    from flask import render_template

    from app.sending.webhook import signature_of
    from tests.integration.signin_helpers import run_jobs

    rebuild_afterwards(request, sim)
    client = mailgun_app.test_client()
    tenant = connected_tenant(client, make_tenant, sim, name="Reminder Mail Co")
    [invoice_id] = owed_invoices(sim, 1)
    due_in(sim, invoice_id, -14)
    mark_sent(mailgun_app, tenant, invoice_id)
    turn_on(mailgun_app, tenant, before=None, every=7)
    services = services_of(mailgun_app)
    assert run_reminders(services, str(tenant.id)) == 1
    run_jobs(mailgun_app, "sending")
    [row] = reminders(mailgun_app, tenant)
    assert row.status == "sent", row.reason
    message = mailgun_fake.received[-1]
    assert message.one("subject").startswith("Reminder: invoice")
    assert ADDRESS in message.one("to") and message.one("v:bi_send") == str(row.id)

    key = "whk-" + "r" * 24
    monkeypatch.setattr(services.config, "MAILGUN_WEBHOOK_SIGNING_KEY", key)
    stamp, token = str(int(time.time())), uuid.uuid4().hex
    body = {"signature": {"timestamp": stamp, "token": token, "signature": signature_of(key, stamp, token)},
            "event-data": {"event": "delivered", "id": uuid.uuid4().hex, "timestamp": time.time(),
                           "user-variables": {"bi_send": str(row.id)}}}
    assert client.post("/webhooks/mailgun", data=json.dumps(body), content_type="application/json").status_code == 200
    [row] = reminders(mailgun_app, tenant)
    with mailgun_app.test_request_context("/"):
        line = render_template("sending/_delivery.html", send=row, to=recipients_of(services.keyring, row)[0])
    text = " ".join(re.sub(r"<[^>]+>", "", line).split())
    assert text.startswith(f"Reminder sent to {ADDRESS}") and text.endswith("· delivered")
