"""Sending in Chromium at 1366 and 390 px: open an invoice, the send panel shows the bill-to contact, CC edited,
Send, the panel says "Sent to …"; a bulk send of three invoices ticked on the list ends with its summary. Nothing
is wider than the screen; no console error. Screenshots go to /tmp (looked at by eye, never committed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_invoices_browser import _page_with_session, browser, served, sim  # noqa: F401
from tests.integration.signin_helpers import run_jobs

SHOTS = Path("/tmp/h1")


def _open_ids(handle, n: int) -> list[dict]:  # type: ignore[no-untyped-def]
    table = handle.state.data["invoices"]
    rows = [table.get(i) for i in sorted(table.ids())]
    return [r for r in rows if r["status"]["id"] == 1 and r["type"] == "Standard" and r["balance"] > 0][:n]


def _fits(page, width: int) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "nothing wider than the screen"


@pytest.mark.parametrize("width", [1366, 390])
def test_send_one_invoice_and_bulk_send_three_in_chromium(app, served, browser, client, make_tenant, sim,  # noqa: F811
                                                          width, request):
    from app.security.limits import reset_limits
    from tests.integration.invoice_helpers import connected_tenant, rebuild_afterwards

    rebuild_afterwards(request, sim)
    with app.app_context():
        reset_limits()
    SHOTS.mkdir(parents=True, exist_ok=True)
    connected_tenant(client, make_tenant, sim, name=f"Send Co {width}")
    page, problems = _page_with_session(browser, served, client)
    page.set_viewport_size({"width": width, "height": 900})
    first, *others = _open_ids(sim, 4)

    page.goto(f"{served}/invoices/{first['id']}")
    panel = page.locator("#send-panel")
    panel.locator(".contact-name").wait_for()
    assert panel.locator(".contact-name").inner_text() == first["attention"]
    to = page.locator("#send-to").input_value()
    assert "@" in to
    page.locator("#send-cc").fill("")
    page.locator("#send-cc").type("Boss@client.example")
    box = panel.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, "the panel is inside the screen"
    _fits(page, width)
    page.screenshot(path=str(SHOTS / f"send-panel-{width}.png"), full_page=True)
    page.get_by_role("button", name="Send", exact=True).click()
    page.locator(".send-queued").wait_for()
    run_jobs(app, "sending")
    line = page.locator(".send-line[data-status=sent]")
    line.wait_for(timeout=15_000)
    assert line.inner_text().startswith(f"Sent to {to}, Boss@client.example")
    assert page.locator(".send-queued").count() == 0  # the progress note replaced itself: only "Sent" shows
    _fits(page, width)
    panel.screenshot(path=str(SHOTS / f"send-panel-sent-{width}.png"))

    page.goto(f"{served}/invoices/")
    for inv in others[:3]:
        page.locator(f"input[name=invoice_id][value='{inv['id']}']").check()
    page.get_by_role("button", name="Send ticked invoices").click()
    page.locator(".bulk-send-progress").wait_for()
    run_jobs(app, "sending")
    summary = page.locator(".bulk-summary")
    summary.wait_for(timeout=15_000)
    assert "3 sent" in summary.inner_text()
    # The list's own table is the invoices page's business (its width is measured by its tests); ours must fit.
    for selector in ("#bulk-send-form", ".bulk-send-progress"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, selector
    page.screenshot(path=str(SHOTS / f"bulk-send-{width}.png"), full_page=False)
    assert problems == []
