"""In Chromium at 390 px: the simulator's longest invoice with time detail reads on a phone. Every cell holding
prose (descriptions, work types, notes) is at least 120 px wide, every amount is inside the viewport, nothing
scrolls sideways; the summary (amount due, status, Pay, PDF) sits above the document. At 1366 px the lines stay a
table. Screenshots land in var/screenshots/ for a person to look at."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app.branding.model import branding_to_form, default_branding
from tests.conftest import csrf_of
from tests.integration.invoice_helpers import connected_tenant, make_link

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("var/screenshots")
PHONE = 390
PROSE_MIN = 120
PROSE = ".bi-lines tbody td.c-desc, .bi-lines tbody td.c-detail"
AMOUNTS = ".bi-lines tbody td.bi-num, .bi-totals td.bi-num, .public-summary-amount strong"
MEASURE = """(selector) => Array.from(document.querySelectorAll(selector))
  .filter(el => el.textContent.trim() && el.getClientRects().length)
  .map(el => { const r = el.getBoundingClientRect();
               return {text: el.textContent.trim().slice(0, 40), left: r.left, right: r.right, width: r.width}; })"""


@pytest.fixture(scope="module")
def sim():  # type: ignore[no-untyped-def]
    import cwsim

    handle = cwsim.serve_in_thread(port=0, invoices=120)
    yield handle
    handle.stop()


@pytest.fixture()
def served(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture()
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def longest_with_time(sim) -> int:  # type: ignore[no-untyped-def]
    """The open invoice (a balance owed) with the most time entries, the longest notes breaking ties."""
    data = sim.state.data
    times, invoices = data["timeEntries"], data["invoices"]

    def size(invoice_id: int) -> tuple[int, int]:
        ids = times.by_invoice.get(invoice_id, [])
        return len(ids), sum(len((times.build(i) or {}).get("notes") or "") for i in ids)

    owed = [i for i in invoices.ids() if invoices.get(i)["balance"] > 0 and times.by_invoice.get(i)]
    return max(owed, key=size)


def test_the_longest_invoice_with_time_detail_reads_on_a_phone(app, served, browser, client, make_tenant, sim):
    from app.security.limits import reset_limits

    with app.app_context():
        reset_limits()
    SHOTS.mkdir(parents=True, exist_ok=True)
    connected_tenant(client, make_tenant, sim, "Northwind IT")
    form = {**branding_to_form(default_branding()), "page_size": "A4", "csrf_token": csrf_of(client),
            "pay_url": "https://pay.example/?invoice={number}&amount={balance}",
            "payment_instructions": "Pay by bank transfer within terms."}
    assert client.post("/settings/branding/", data=form).status_code == 302
    invoice_id = longest_with_time(sim)
    link = f"{served}/i/{make_link(client, invoice_id)}"

    phone = browser.new_context(viewport={"width": PHONE, "height": 844}, is_mobile=True)
    page = phone.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    assert page.goto(link).status == 200
    page.wait_for_selector(".bi-detail-table")
    page.screenshot(path=str(SHOTS / "public-phone-top.png"))
    page.screenshot(path=str(SHOTS / "public-phone-full.png"), full_page=True)

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE
    notes = page.evaluate(MEASURE, ".bi-detail-table tbody td.c-desc")
    assert len(notes) >= 5, "the time detail's notes are on the page"
    prose = page.evaluate(MEASURE, PROSE)
    narrow = [c for c in prose if c["width"] < PROSE_MIN]
    assert narrow == [], narrow
    amounts = page.evaluate(MEASURE, AMOUNTS)
    assert len(amounts) > len(notes)
    outside = [c for c in amounts if c["left"] < 0 or c["right"] > PHONE]
    assert outside == [], outside
    # The summary comes first: what is due, the Pay button, the PDF, all inside the screen.
    for selector in (".public-summary-amount strong", "a.public-button-pay", "a.public-button-pdf"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE and box["y"] < 844, selector
    phone.close()

    desk = browser.new_context(viewport={"width": 1366, "height": 900})
    wide = desk.new_page()
    wide.goto(link)
    wide.wait_for_selector(".bi-detail-table")
    wide.screenshot(path=str(SHOTS / "public-desktop.png"), full_page=True)
    # At desktop width the lines are a table again: column heads shown, a line's cells side by side.
    assert wide.locator(".bi-detail-table .bi-colheads").first.is_visible()
    row = wide.evaluate(MEASURE, ".bi-detail-table tbody tr:not(.bi-group):not(.bi-subtotal) td")
    assert len({round(c["left"]) for c in row[:3]}) == 3
    assert wide.evaluate("document.documentElement.scrollWidth") <= 1366
    desk.close()
    errors = [p for p in problems if "Failed to load resource" not in p]  # the favicon's 404
    assert errors == [], errors
