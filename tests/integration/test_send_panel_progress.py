"""The send panel's progress: after Send, the "Queued" note shows while the message is on its way, inside the block
the panel polls, so the poll that finds the message sent (or failed) replaces it and only the current state shows.
Stylesheets belong to the pages (their heads), never to the partials htmx swaps in."""

from __future__ import annotations

from pathlib import Path

from tests.integration.invoice_helpers import htmx
from tests.integration.signin_helpers import run_jobs
from tests.integration.test_sending_invoices import (  # noqa: F401 (fixtures)
    billing_email,
    compose,
    mailgun_app,
    mailgun_fake,
    open_invoices,
    sent_tenant,
)

SENDING_CSS = "css/sending.css"


def test_the_queued_note_goes_once_the_send_is_sent(sent_tenant, sim, mailgun_app, mailgun_fake):  # noqa: F811
    _tenant, client = sent_tenant
    [invoice] = open_invoices(sim)
    _name, email = billing_email(sim, invoice)
    answer = compose(client, invoice["id"]).get_data(as_text=True)
    # Just sent: the note is inside the polled block and takes focus; the line below says queued.
    history = answer[answer.index('id="send-history"'):]
    assert 'id="send-queued"' in history and "data-focus-after-swap" in history.split("</p>")[0]
    assert 'hx-trigger="every 2s"' in answer and f"queued for {email}" in answer
    # A poll while it is still queued keeps the note (same id, so focus stays) but does not pull focus again.
    polled = client.get(f"/invoices/{invoice['id']}/sends", headers=htmx(client)).get_data(as_text=True)
    assert 'id="send-queued"' in polled and "data-focus-after-swap" not in polled
    run_jobs(mailgun_app, "sending")
    # The poll after the send: the sent line, no note, no more polling.
    done = client.get(f"/invoices/{invoice['id']}/sends", headers=htmx(client)).get_data(as_text=True)
    assert f"Sent to {email}" in done
    assert "Queued" not in done and "send-queued" not in done and "every 2s" not in done
    panel = client.get(f"/invoices/{invoice['id']}/send", headers=htmx(client)).get_data(as_text=True)
    assert "Queued" not in panel and f"Sent to {email}" in panel


def test_the_send_stylesheet_is_in_the_page_heads_not_in_the_partials(sent_tenant, sim):  # noqa: F811
    _tenant, client = sent_tenant
    [invoice] = open_invoices(sim)
    panel = client.get(f"/invoices/{invoice['id']}/send", headers=htmx(client)).get_data(as_text=True)
    assert SENDING_CSS not in panel and 'id="send-panel"' in panel
    for path in (f"/invoices/{invoice['id']}", "/invoices/", "/review/"):
        page = client.get(path).get_data(as_text=True)
        head, body = page.split("</head>", 1)
        assert SENDING_CSS in head, path
        assert SENDING_CSS not in body, path  # once, in the head: the bulk form and inbox partials carry no link
    # Every sending partial (the bulk form, Send all approved, the panel's parts) is a pure fragment.
    partials = sorted((Path(__file__).parents[2] / "app" / "templates" / "sending").glob("_*.html"))
    assert len(partials) >= 5
    assert [p.name for p in partials if "<link" in p.read_text("utf-8")] == []
