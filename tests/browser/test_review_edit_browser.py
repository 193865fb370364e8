"""In Chromium at 1366 and 390 px: a product's unit price edited inline from the keyboard (focus the value, Enter
opens its input, type, Enter saves) reaches the simulator and the totals on the page change to ConnectWise's new
ones; a bad value is refused beside the field; Esc puts the value back. Nothing wider than the screen, no console
error. Screenshots in var/screenshots/."""

from __future__ import annotations

import pytest

from app.review.sweep import run_sweep
from app.services import services_of
from tests.browser.test_invoices_browser import SHOTS, browser, served, sim  # noqa: F401 (fixtures)
from tests.browser.test_review_decisions_browser import WIDTH
from tests.browser.test_review_flow import SCREENS, _page
from tests.integration.invoice_helpers import connected_tenant
from tests.integration.test_review_edits import _open_usd_invoice_with


@pytest.mark.parametrize("screen", SCREENS)
def test_edit_a_price_inline_with_the_keyboard(app, served, browser, client, make_tenant, sim, screen):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    sim.reset()
    tenant = connected_tenant(client, make_tenant, sim, "Edits Browser IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full").outcome == "ok"
    invoice_id, product = _open_usd_invoice_with(app, tenant, sim, "products")
    viewport = SCREENS[screen]
    page, problems = _page(browser, served, client, viewport)
    page.goto(f"{served}/review/{invoice_id}")
    cell = f"#cell-product-{product['id']}-price"
    total_before = page.inner_text("#review-lines-totals [data-total]")
    page.locator("#review-lines").screenshot(path=str(SHOTS / f"{screen}-edit-lines.png"))
    assert page.evaluate(WIDTH) <= viewport["width"]

    # Esc cancels: the value comes back unchanged, focused.
    page.focus(f"{cell} .cell-value")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{cell} input[name=value]:focus")
    page.keyboard.press("Escape")
    page.wait_for_selector(f"{cell} .cell-value:focus")

    # A bad value is refused beside the field; nothing reaches ConnectWise.
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{cell} input[name=value]:focus")
    page.keyboard.type("12.3.4")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{cell} .cell-error")
    page.locator(cell).screenshot(path=str(SHOTS / f"{screen}-edit-refused.png"))
    assert not [r for r in sim.requests if r.method == "PATCH"]

    # A good one: written, and the totals follow.
    new_price = product["price"] + 250
    page.fill(f"{cell} input[name=value]", f"{new_price:.2f}")
    page.focus(f"{cell} input[name=value]")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{cell} .cell-notice")
    assert sim.state.data["products"].get(product["id"])["price"] == new_price
    cw_total = sim.state.data["invoices"].get(invoice_id)["total"]
    page.wait_for_function("(t) => document.querySelector('#review-lines-totals [data-total]').innerText !== t",
                           arg=total_before)
    assert page.inner_text("#review-lines-totals [data-total]") == f"${cw_total:,.2f}"
    assert page.inner_text("#review-head-total") == f"${cw_total:,.2f}"
    assert f"${new_price:,.2f}" in page.inner_text(cell)
    page.wait_for_selector("#review-timeline :text('edited unit price')")
    page.locator("#review-lines").screenshot(path=str(SHOTS / f"{screen}-edit-saved.png"))
    page.screenshot(path=str(SHOTS / f"{screen}-edit-page.png"), full_page=True)
    assert page.evaluate(WIDTH) <= viewport["width"]
    # The one refusal (422) is the browser's only complaint.
    assert [p for p in problems if "status of 422" not in p] == [], problems
    assert len([p for p in problems if "status of 422" in p]) == 1
