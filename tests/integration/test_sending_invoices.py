"""Sending invoices to clients against the simulator and a local Mailgun endpoint (through the official SDK): the
panel shows the bill-to contact and the filled-in cover message; a send goes out with the PDF attached, from the
workspace's name with Reply-To the sender, ``bi_send`` set, and the Sent billing status written back to
ConnectWise; bad addresses are refused beside the field; no contact is skipped with the reason; Mailgun's 5xx is
retried, then failed with its reason; a refused write-back says the email still went; bulk sends count progress
and end with a summary; "Send all approved" sends the review inbox's approved invoices; viewers get 403."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.invoices.links import hash_token
from app.invoices.models import PublicLink
from app.sending.models import InvoiceSend, SendSettings
from app.sending.settings import DEFAULT_BODY, DEFAULT_REMINDER_BODY, DEFAULT_REMINDER_SUBJECT, DEFAULT_SUBJECT
from app.sending.templating import render_message
from app.tenancy import tenant_session
from tests.conftest import sign_in
from tests.integration import mailgun_fake as mailgun_fixtures
from tests.integration.invoice_helpers import add_user, connected_tenant, htmx, rebuild_afterwards
from tests.integration.signin_helpers import run_delayed_jobs, run_jobs

mailgun_fake, mailgun_app = mailgun_fixtures.mailgun_fake, mailgun_fixtures.mailgun_app  # the fixtures
SENT_STATUS = 5  # the simulator's "Sent" billing status (its Sent flag set)


@pytest.fixture()
def sent_tenant(request, mailgun_app, make_tenant, sim):  # type: ignore[no-untyped-def]
    """A tenant connected to the simulator, signed in on a client of the Mailgun-sending app; the simulator's data
    rebuilt afterwards (sends write statuses there)."""
    rebuild_afterwards(request, sim)
    client = mailgun_app.test_client()
    tenant = connected_tenant(client, make_tenant, sim, name="Northwind IT")
    return tenant, client


def open_invoices(sim, n: int = 1) -> list[dict]:  # type: ignore[no-untyped-def]
    """Open standard invoices with a balance, status New (so writing Sent is a change)."""
    table = sim.state.data["invoices"]
    found = [table.get(i) for i in sorted(table.ids())]
    found = [r for r in found if r["status"]["id"] == 1 and r["type"] == "Standard" and r["balance"] > 0]
    companies = []
    picked = []
    for r in found:  # different companies, so a test can take one's contact away and not another's
        if r["company"]["id"] not in companies:
            companies.append(r["company"]["id"])
            picked.append(r)
        if len(picked) == n:
            return picked
    raise AssertionError("the simulator has enough open invoices")


def billing_email(sim, invoice: dict) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    company = sim.state.data["companies"].get(invoice["company"]["id"])
    contact = sim.state.data["contacts"].get(company["billingContact"]["id"])
    email = next(i["value"] for i in contact["communicationItems"] if i["communicationType"] == "Email")
    return f"{contact['firstName']} {contact['lastName']}", email


def without_contact(sim, invoice: dict) -> None:  # type: ignore[no-untyped-def]
    """The invoice's company keeps its contacts but none has an email, and no invoice address either."""
    cid = invoice["company"]["id"]
    sim.state.data["companies"].set_fields(cid, {"invoiceToEmailAddress": ""})
    contacts = sim.state.data["contacts"]
    for contact_id in contacts.ids():
        contact = contacts.get(contact_id)
        if contact["company"]["id"] == cid:
            contacts.set_fields(contact_id, {"communicationItems": [
                i for i in contact["communicationItems"] if i["communicationType"] != "Email"]})


def set_send_settings(app, tenant, **values) -> None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        s.add(SendSettings(tenant_id=tenant.id, subject_template=DEFAULT_SUBJECT, body_template=DEFAULT_BODY,
                           reminder_subject_template=DEFAULT_REMINDER_SUBJECT,
                           reminder_body_template=DEFAULT_REMINDER_BODY, **values))


def sends(app, tenant) -> list[InvoiceSend]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        rows = list(s.execute(select(InvoiceSend).order_by(InvoiceSend.created_at)).scalars())
        for r in rows:
            s.expunge(r)
        return rows


def audits(app, tenant, prefix: str = "invoice.") -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        rows = list(s.execute(select(AuditEntry).where(AuditEntry.action.startswith(prefix))
                              .order_by(AuditEntry.id)).scalars())
        for r in rows:
            s.expunge(r)
        return rows


def compose(client, invoice_id: int, **changes: str):  # type: ignore[no-untyped-def]
    """Open the panel, take the form as filled in, change some fields and send it."""
    panel = client.get(f"/invoices/{invoice_id}/send", headers=htmx(client))
    assert panel.status_code == 200, panel.get_data(as_text=True)[:500]
    html = panel.get_data(as_text=True)
    import re

    def value(name: str) -> str:
        if name == "body":
            return re.search(r'<textarea id="send-body" name="body"[^>]*>(.*?)</textarea>', html, re.S).group(1)
        return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)

    from html import unescape

    data = {k: unescape(value(k)) for k in ("to", "cc", "subject", "body", "contact_name", "source", "number")}
    data.update(changes)
    return client.post(f"/invoices/{invoice_id}/send", data=data, headers=htmx(client))


def cw_status(sim, invoice_id: int) -> int:  # type: ignore[no-untyped-def]
    return sim.state.data["invoices"].get(invoice_id)["status"]["id"]


def test_the_panel_shows_the_bill_to_contact_and_the_cover_message_filled_in(sent_tenant, sim):
    tenant, client = sent_tenant
    [invoice] = open_invoices(sim)
    name, email = billing_email(sim, invoice)
    html = client.get(f"/invoices/{invoice['id']}/send", headers=htmx(client)).get_data(as_text=True)
    assert name in html and f'value="{email}"' in html
    assert f"Invoice {invoice['invoiceNumber']} from Northwind IT" in html
    assert "{link}" in html  # filled in when sent, with the invoice's public link
    assert "{number}" not in html and "{amount_due}" not in html


def test_a_send_goes_out_through_mailgun_with_the_pdf_and_the_sent_status_is_written_back(
        sent_tenant, sim, mailgun_app, mailgun_fake):
    tenant, client = sent_tenant
    set_send_settings(mailgun_app, tenant, sent_status_id=SENT_STATUS, sent_status_name="Sent")
    [invoice] = open_invoices(sim)
    _name, email = billing_email(sim, invoice)
    response = compose(client, invoice["id"], cc="boss@client.example", body="Hi {client_name},\n\n{link}\n{0.__class__}")
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    assert "Queued" in response.get_data(as_text=True)
    [row] = sends(mailgun_app, tenant)
    assert row.status == "queued" and row.to_enc and email.encode() not in row.to_enc  # encrypted
    run_jobs(mailgun_app, "sending")

    [got] = mailgun_fake.received
    assert got.path == "/v3/mg.example.com/messages"
    assert got.one("to") == email and got.one("cc") == "boss@client.example"
    assert got.one("subject") == f"Invoice {invoice['invoiceNumber']} from Northwind IT"
    assert "Northwind IT" in got.one("from") and got.one("h:Reply-To") == tenant.owner_email
    assert got.one("v:bi_send") == str(row.id)
    assert "{0.__class__}" in got.one("text")  # a person's braces stay text
    token = got.one("text").split("/i/")[1].split()[0]
    [pdf] = got.attachments
    assert pdf.filename.endswith(".pdf") and pdf.data.startswith(b"%PDF") and pdf.content_type == "application/pdf"
    with tenant_session(tenant.id, mailgun_app.extensions["session_factory"]) as s:
        link = s.execute(select(PublicLink).where(PublicLink.token_hash == hash_token(token))).scalar_one()
        assert link.invoice_id == invoice["id"] and link.token_enc is not None

    [row] = sends(mailgun_app, tenant)
    assert (row.status, row.delivery, row.writeback) == ("sent", "accepted", "done")
    assert row.provider_message_id == "<2026.1@mg.example.com>" and row.invoice_number == invoice["invoiceNumber"]
    assert cw_status(sim, invoice["id"]) == SENT_STATUS
    actions = [(a.action, a.after) for a in audits(mailgun_app, tenant)]
    assert [a for a, _ in actions] == ["invoice.send_queued", "invoice.sent"]
    assert actions[1][1]["recipients"] == 2 and actions[1][1]["invoice_number"] == invoice["invoiceNumber"]
    assert email not in str(actions)  # the audit names the count, never the addresses
    panel = client.get(f"/invoices/{invoice['id']}/send", headers=htmx(client)).get_data(as_text=True)
    assert f"Sent to {email}, boss@client.example" in panel and "Marked as sent in ConnectWise" in panel

    # The next send reuses the invoice's one link, and leaves an already-Sent status alone.
    compose(client, invoice["id"])
    run_jobs(mailgun_app, "sending")
    assert mailgun_fake.received[1].one("text").split("/i/")[1].split()[0] == token


def test_without_a_sent_status_chosen_nothing_is_written_and_no_pdf_when_turned_off(
        sent_tenant, sim, mailgun_app, mailgun_fake):
    tenant, client = sent_tenant
    set_send_settings(mailgun_app, tenant, attach_pdf=False)
    [invoice] = open_invoices(sim)
    assert compose(client, invoice["id"]).status_code == 200
    run_jobs(mailgun_app, "sending")
    [got] = mailgun_fake.received
    assert got.attachments == []
    [row] = sends(mailgun_app, tenant)
    assert row.status == "sent" and row.writeback == "not_set" and cw_status(sim, invoice["id"]) == 1


def test_bad_addresses_are_refused_beside_the_field_and_nothing_is_queued(sent_tenant, sim, mailgun_app):
    tenant, client = sent_tenant
    [invoice] = open_invoices(sim)
    response = compose(client, invoice["id"], to="ap@client.example, not-an-address", cc="x@")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="send-to-error"' in html and "“not-an-address” is not an email address." in html
    assert 'id="send-cc-error"' in html and "“x@” is not an email address." in html
    assert 'value="ap@client.example, not-an-address"' in html  # what was typed stays
    empty = compose(client, invoice["id"], to="", subject=" ")
    assert empty.status_code == 422 and "Enter at least one address in To." in empty.get_data(as_text=True)
    assert "Enter a subject." in empty.get_data(as_text=True)
    assert sends(mailgun_app, tenant) == []


def test_a_mailgun_5xx_is_retried_then_failed_with_its_reason(sent_tenant, sim, mailgun_app, mailgun_fake):
    tenant, client = sent_tenant
    set_send_settings(mailgun_app, tenant, sent_status_id=SENT_STATUS, sent_status_name="Sent")
    mailgun_fake.statuses = [503]
    [invoice] = open_invoices(sim)
    assert compose(client, invoice["id"]).status_code == 200
    run_jobs(mailgun_app, "sending")
    [row] = sends(mailgun_app, tenant)
    assert row.status == "queued" and "Mailgun refused the message (HTTP 503)" in row.reason
    assert "Trying again in 30 s (try 2 of 4)" in row.reason
    for _ in range(3):
        assert run_delayed_jobs(mailgun_app, "sending") == 1
    assert run_delayed_jobs(mailgun_app, "sending") == 0
    assert len(mailgun_fake.received) >= 4  # four tries of ours (the SDK may retry a 5xx itself within each)
    [row] = sends(mailgun_app, tenant)
    assert row.status == "failed" and row.attempts == 4 and row.writeback is None
    assert row.reason == "Mailgun refused the message (HTTP 503) Gave up after 4 tries."
    assert cw_status(sim, invoice["id"]) == 1  # nothing sent, nothing written back
    failed = [a for a in audits(mailgun_app, tenant) if a.action == "invoice.send_failed"]
    assert len(failed) == 1 and failed[0].after["attempts"] == 4
    panel = client.get(f"/invoices/{invoice['id']}/send", headers=htmx(client)).get_data(as_text=True)
    assert "failed: Mailgun refused the message (HTTP 503)" in panel


def test_a_refused_write_back_is_recorded_and_the_panel_says_the_email_went(sent_tenant, sim, mailgun_app,
                                                                          mailgun_fake):
    tenant, client = sent_tenant
    set_send_settings(mailgun_app, tenant, sent_status_id=SENT_STATUS, sent_status_name="Sent")
    sim.configure(forbidden_writes="finance/invoices")
    try:
        [invoice] = open_invoices(sim)
        assert compose(client, invoice["id"]).status_code == 200
        run_jobs(mailgun_app, "sending")
    finally:
        sim.configure(forbidden_writes="")
    [row] = sends(mailgun_app, tenant)
    assert row.status == "sent" and row.writeback == "failed" and "ConnectWise refused to set “Sent”" in row.writeback_reason
    assert len(mailgun_fake.received) == 1 and cw_status(sim, invoice["id"]) == 1
    panel = client.get(f"/invoices/{invoice['id']}/send", headers=htmx(client)).get_data(as_text=True)
    assert "The email was sent, but its status in ConnectWise was not changed" in panel


def test_a_bulk_send_skips_an_invoice_without_a_contact_and_ends_with_a_summary(sent_tenant, sim, mailgun_app,
                                                                               mailgun_fake):
    tenant, client = sent_tenant
    set_send_settings(mailgun_app, tenant, sent_status_id=SENT_STATUS, sent_status_name="Sent")
    invoices = open_invoices(sim, 3)
    without_contact(sim, invoices[2])
    ids = [str(i["id"]) for i in invoices]
    started = client.post("/sending/bulk", data={"invoice_id": ids}, headers=htmx(client))
    assert started.status_code == 200
    html = started.get_data(as_text=True)
    assert "Sending 0 of 3 invoices" in html and 'hx-trigger="every 1s"' in html
    batch_id = html.split('id="batch-')[1].split('"')[0]
    run_jobs(mailgun_app, "sending")
    done = client.get(f"/sending/batches/{batch_id}", headers=htmx(client)).get_data(as_text=True)
    assert "Bulk send finished:" in done and "2 sent" in done and "1 skipped" in done and "every 1s" not in done
    company = sim.state.data["companies"].get(invoices[2]["company"]["id"])["name"]
    assert invoices[2]["invoiceNumber"] in done
    assert f"the billing contact of {company} in ConnectWise, has no email address." in done
    assert sorted(r.status for r in sends(mailgun_app, tenant)) == ["sent", "sent", "skipped"]
    assert len(mailgun_fake.received) == 2
    assert [cw_status(sim, i["id"]) for i in invoices] == [SENT_STATUS, SENT_STATUS, 1]


def test_a_bulk_send_is_capped_and_needs_a_tick(sent_tenant, mailgun_app):
    tenant, client = sent_tenant
    too_many = client.post("/sending/bulk", data={"invoice_id": [str(i) for i in range(1, 202)]}, headers=htmx(client))
    assert too_many.status_code == 422 and "At most 200 invoices in one bulk send; 201 were chosen" in \
        too_many.get_data(as_text=True)
    none = client.post("/sending/bulk", data={}, headers=htmx(client))
    assert none.status_code == 422 and "Tick the invoices to send first." in none.get_data(as_text=True)
    bad = client.post("/sending/bulk", data={"invoice_id": ["12", "x"]}, headers=htmx(client))
    assert bad.status_code == 422
    assert sends(mailgun_app, tenant) == []


def test_send_all_approved_sends_the_review_inboxs_approved_invoices(sent_tenant, sim, mailgun_app,
                                                                     mailgun_fake):
    from app.review.models import ReviewInvoice

    tenant, client = sent_tenant
    invoices = open_invoices(sim, 2)
    assert client.post("/sending/bulk/approved", headers=htmx(client)).status_code == 422  # none approved yet
    with tenant_session(tenant.id, mailgun_app.extensions["session_factory"]) as s:
        for n, inv in enumerate(invoices):
            s.add(ReviewInvoice(tenant_id=tenant.id, invoice_id=inv["id"], invoice_number=inv["invoiceNumber"],
                                state="approved" if n == 0 else "needs_review", **_review_row_defaults(inv)))
    started = client.post("/sending/bulk/approved", headers=htmx(client))
    assert started.status_code == 200, started.get_data(as_text=True)[:500]
    run_jobs(mailgun_app, "sending")
    [row] = sends(mailgun_app, tenant)
    assert row.invoice_id == invoices[0]["id"] and row.status == "sent" and row.batch_id is not None


def _review_row_defaults(invoice: dict) -> dict:
    """The columns an inbox row needs beside its number and state (what the sweep would have stored)."""
    import datetime as dt
    from decimal import Decimal

    from app.review.models import ReviewInvoice

    values: dict = {}
    columns = ReviewInvoice.__table__.columns
    for name, value in (("company_name", invoice["company"]["name"]), ("company_id", invoice["company"]["id"]),
                        ("total", Decimal(str(invoice["total"]))), ("balance", Decimal(str(invoice["balance"]))),
                        ("status_id", 1), ("status_name", "New"), ("display_type", "Standard"),
                        ("currency", "USD"), ("invoice_date", dt.date.today()), ("snapshot_id", None)):
        if name in columns:
            values[name] = value
    return values


def test_a_viewer_may_not_send(mailgun_app, make_tenant, sim):
    client = mailgun_app.test_client()
    tenant = connected_tenant(client, make_tenant, sim, name="Viewer Co")
    viewer = add_user(mailgun_app, tenant, "viewer")
    sign_in(client, tenant, viewer)
    [invoice] = open_invoices(sim)
    for method, path in (("get", f"/invoices/{invoice['id']}/send"), ("post", f"/invoices/{invoice['id']}/send"),
                         ("get", f"/invoices/{invoice['id']}/sends"), ("post", "/sending/bulk"),
                         ("post", "/sending/bulk/approved"), ("get", f"/sending/batches/{uuid.uuid4()}")):
        response = getattr(client, method)(path, data={"to": "a@b.example", "invoice_id": "1"}, headers=htmx(client)) \
            if method == "post" else client.get(path, headers=htmx(client))
        assert response.status_code == 403, path
    assert sends(mailgun_app, tenant) == []


def test_render_message_fills_known_tokens_and_leaves_everything_else_as_typed():
    tokens = {"number": "INV-1", "client_name": "Acme <b>"}
    assert render_message("{number} for {client_name}: {unknown} {0} {number!r} {{number}}", tokens) == \
        "INV-1 for Acme <b>: {unknown} {0} {number!r} {INV-1}"
