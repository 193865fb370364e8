"""The send settings page in Chromium at 1366 and 390 px: the Sent statuses load into the form, typing in the subject
updates the preview, a bad number of days is refused beside its field, a save shows the toast; nothing wider than
the screen. Screenshots land in /tmp/bi-sending/ (looked at, not committed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_invoices_browser import browser, served, sim  # noqa: F401 (fixtures)
from tests.integration.invoice_helpers import connected_tenant

SHOTS = Path("/tmp/bi-sending")


@pytest.mark.parametrize("width,height", [(1366, 900), (390, 844)])
def test_send_settings_page_previews_refuses_and_saves(served, browser, client, make_tenant, sim,  # noqa: F811
                                                       width, height):
    SHOTS.mkdir(parents=True, exist_ok=True)
    connected_tenant(client, make_tenant, sim, f"Sending Page {width}")
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=width < 500)
    context.add_cookies([{"name": "bi_session", "value": client.get_cookie("bi_session").value, "url": served}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(served + "/settings/sending/")
    status = page.locator("select[name=sent_status_id]")
    status.wait_for()
    assert "Sent" in status.inner_text() and "Approved" not in status.inner_text()
    subject = page.locator("input[name=subject_template]")
    subject.fill("Invoice {number} for {client_name}")
    page.locator("#send-preview", has_text="Invoice INV-1042 for Northwind Traders").wait_for()
    page.screenshot(path=str(SHOTS / f"settings-{width}.png"), full_page=True)
    measured = page.evaluate("""() => ({
        page: document.documentElement.scrollWidth,
        fields: [...document.querySelectorAll('#send-settings input, #send-settings textarea, #send-settings select')]
            .filter(e => e.type !== 'hidden').map(e => e.getBoundingClientRect().right),
        preview: document.querySelector('#send-preview').getBoundingClientRect().width,
    })""")
    assert measured["page"] <= width, measured
    assert max(measured["fields"]) <= width, measured
    assert measured["preview"] >= min(400, width - 120), measured  # the card's padding, no more

    page.locator("input[name=reminders_enabled]").check()
    page.locator("input[name=remind_every_days]").fill("90")
    page.locator("button[type=submit]", has_text="Save sending settings").click()
    error = page.locator("#remind_every_days-error")
    error.wait_for()
    assert "from 1 to 60" in error.inner_text()
    page.wait_for_function("document.activeElement && document.activeElement.name === 'remind_every_days'")
    page.screenshot(path=str(SHOTS / f"settings-{width}-refused.png"), full_page=True)
    page.locator("input[name=remind_every_days]").fill("7")
    page.locator("select[name=sent_status_id]").select_option(label="Sent")
    page.locator("button[type=submit]", has_text="Save sending settings").click()
    page.locator(".toast", has_text="Sending settings saved.").wait_for()
    page.screenshot(path=str(SHOTS / f"settings-{width}-saved.png"))
    assert page.locator("input[name=remind_every_days]").input_value() == "7"
    assert page.locator("select[name=sent_status_id] option:checked").inner_text().strip() == "Sent"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert [e for e in errors if "status of 422" not in e] == []  # the refusal is a 422 by design
    context.close()
