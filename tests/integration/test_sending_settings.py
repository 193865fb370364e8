"""The send settings page: the cover message templates with their tokens and a preview filled from a sample, PDF
attached or not, the billing status written after a send (picked from the tenant's Sent-flag statuses, loaded by
htmx, with the reason when ConnectWise cannot be asked), reminders (off by default, 1..60 days); 422 beside the
field, audited with before and after, a toast on save, 403 for a viewer."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.sending.models import SendSettings
from app.sending.settings import DEFAULT_BODY, DEFAULT_REMINDER_BODY, DEFAULT_REMINDER_SUBJECT, DEFAULT_SUBJECT
from app.tenancy import tenant_session
from tests.conftest import csrf_of, sign_in
from tests.integration.invoice_helpers import (  # noqa: F401 - sim_knobs_at_defaults is an autouse fixture
    add_user,
    connected_tenant,
    htmx,
    sim_knobs_at_defaults,
)

URL = "/settings/sending/"


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Sending Settings Co")


def form(**changes: str) -> dict[str, str]:
    values = {"subject_template": DEFAULT_SUBJECT, "body_template": DEFAULT_BODY,
              "reminder_subject_template": DEFAULT_REMINDER_SUBJECT, "reminder_body_template": DEFAULT_REMINDER_BODY,
              "attach_pdf": "on", "sent_status_id": "", "remind_days_before": "", "remind_every_days": ""}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def stored(app, tenant) -> SendSettings | None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        row = session.execute(select(SendSettings)).scalar_one_or_none()
        if row is not None:
            session.expunge(row)
        return row


def audits(app, tenant) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        rows = session.execute(select(AuditEntry).where(AuditEntry.action == "sending.settings_changed")
                               .order_by(AuditEntry.id)).scalars().all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_page_shows_the_defaults_the_tokens_a_preview_and_reminders_off(client, tenant):
    response = client.get(URL)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    for token in ("{client_name}", "{number}", "{amount_due}", "{due_date}", "{link}", "{sender}"):
        assert token in body
    assert 'value="Invoice {number} from {sender}"' in body
    assert "Invoice INV-1042 from Sending Settings Co" in body  # the preview, filled from the sample
    assert re.search(r'name="reminders_enabled"\s*>', body)  # not checked
    assert re.search(r'name="attach_pdf" checked', body)
    assert 'hx-get="/settings/sending/statuses' in body  # the statuses load after the page


def test_only_statuses_with_the_sent_flag_are_offered(client, tenant):
    body = client.get("/settings/sending/statuses", headers=htmx(client)).get_data(as_text=True)
    options = re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>', body)
    names = {name.strip() for value, name in options if value}
    assert "Sent" in names
    assert not names & {"New", "Ready for Review", "Approved", "Rejected", "Void"}


def test_the_statuses_say_why_when_connectwise_cannot_be_asked(app, client, make_tenant, redis_conn):
    tenant = make_tenant("Unconnected Co")
    sign_in(client, tenant)
    body = client.get("/settings/sending/statuses", headers=htmx(client)).get_data(as_text=True)
    assert "Connect ConnectWise first" in body
    response = client.post(URL, data=form(sent_status_id="5"), headers=htmx(client))
    assert response.status_code == 422
    assert "could not be asked" in response.get_data(as_text=True)
    assert stored(app, tenant) is None


def test_a_save_stores_audits_before_and_after_and_says_so(app, client, tenant):
    response = client.post(URL, data=form(subject_template="Your invoice {number}", sent_status_id="5",
                                          reminders_enabled="on", remind_days_before="3", remind_every_days="7",
                                          attach_pdf=None), headers=htmx(client))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Sending settings saved." in body and 'hx-swap-oob="beforeend"' in body
    row = stored(app, tenant)
    assert row is not None
    assert (row.subject_template, row.attach_pdf, row.sent_status_id, row.sent_status_name) == \
        ("Your invoice {number}", False, 5, "Sent")
    assert (row.reminders_enabled, row.remind_days_before, row.remind_every_days) == (True, 3, 7)
    assert row.updated_by == tenant.owner_id
    [entry] = audits(app, tenant)
    assert entry.before["subject_template"] == DEFAULT_SUBJECT
    assert entry.after["subject_template"] == "Your invoice {number}"
    assert (entry.before["attach_pdf"], entry.after["attach_pdf"]) == (True, False)
    assert (entry.before["reminders_enabled"], entry.after["reminders_enabled"]) == (False, True)
    assert "body_template" not in entry.after  # only what changed
    again = client.post(URL, data=form(subject_template="Your invoice {number}", sent_status_id="5",
                                       reminders_enabled="on", remind_days_before="3", remind_every_days="7",
                                       attach_pdf=None), headers=htmx(client))
    assert "Nothing changed." in again.get_data(as_text=True)
    assert len(audits(app, tenant)) == 1


def test_a_plain_form_post_redirects_to_the_page_with_the_message(client, tenant):
    response = client.post(URL, data={**form(subject_template="Plain {number}"), "csrf_token": csrf_of(client)})
    assert response.status_code == 303 and response.headers["Location"].endswith(URL)
    assert "Sending settings saved." in client.get(URL).get_data(as_text=True)


@pytest.mark.parametrize("field,value,message", [
    ("remind_days_before", "0", "from 1 to 60"),
    ("remind_days_before", "61", "from 1 to 60"),
    ("remind_every_days", "abc", "from 1 to 60"),
    ("remind_every_days", "-3", "from 1 to 60"),
    ("subject_template", "", "Write a subject"),
    ("subject_template", "two\nlines", "one line"),
    ("body_template", "   ", "Write a message"),
    ("body_template", "x" * 5001, "at most 5000"),
    ("sent_status_id", "3", "Sent flag"),  # Approved: no Sent flag
    ("sent_status_id", "999", "Sent flag"),
    ("sent_status_id", "x", "Pick one"),
])
def test_bad_input_is_refused_beside_its_field_and_nothing_is_saved(app, client, tenant, field, value, message):
    response = client.post(URL, data=form(**{"reminders_enabled": "on", "remind_every_days": "7", field: value}),
                           headers=htmx(client))
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    error = re.search(rf'<span class="field-error" id="{field}-error">([^<]*)</span>', body)
    assert error is not None and message in error.group(1)
    assert f'aria-describedby="{field}-error"' in body
    assert stored(app, tenant) is None and audits(app, tenant) == []


def test_reminders_on_need_at_least_one_step(app, client, tenant):
    response = client.post(URL, data=form(reminders_enabled="on"), headers=htmx(client))
    assert response.status_code == 422
    assert "days before the due date" in text_of(response.get_data(as_text=True))
    assert stored(app, tenant) is None


def test_the_preview_fills_known_tokens_leaves_others_and_escapes(client, tenant):
    response = client.post("/settings/sending/preview", headers=htmx(client), data=form(
        subject_template="Invoice {number} for {client_name} {unknown} {0.__class__}",
        body_template="<script>alert(1)</script> {amount_due} due {due_date}: {link}"))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Invoice INV-1042 for Northwind Traders {unknown} {0.__class__}" in body
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "$1,250.00 due 15 Dec 2026" in body


def test_a_viewer_may_not_see_or_change_the_settings(app, client, tenant):
    viewer = add_user(app, tenant, "viewer")
    sign_in(client, tenant, viewer)
    assert client.get(URL).status_code == 403
    assert client.get("/settings/sending/statuses").status_code == 403
    assert client.post(URL, data=form(subject_template="Hacked"), headers=htmx(client)).status_code == 403
    assert client.post("/settings/sending/preview", data=form(), headers=htmx(client)).status_code == 403
    assert stored(app, tenant) is None
