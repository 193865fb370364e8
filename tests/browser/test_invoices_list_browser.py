"""In Chromium at 1366 and 390 px: the invoices list fits (no sideways scrolling, every amount and badge on screen),
a column header sorts it, the page total shows, a copied link is shown whole and a second copy gives the same link,
a second PDF click replaces the progress card instead of stacking one, and the dashboard's figures fit.
Screenshots land in var/screenshots/."""

from __future__ import annotations

from tests.browser.test_invoices_browser import SHOTS, browser, served, sim  # noqa: F401 (fixtures)
from tests.integration.invoice_helpers import connected_tenant

WIDTHS = (1366, 390)


def _page(browser, base: str, cookie_client, width: int):  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 900}, is_mobile=width < 500)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    context.add_cookies([{"name": "bi_session", "value": cookie_client.get_cookie("bi_session").value, "url": base}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page, problems


MEASURE = """() => {
  const inside = els => els.filter(e => e.offsetParent !== null).map(e => e.getBoundingClientRect())
    .filter(r => r.left < 0 || r.right > window.innerWidth + 0.5).length;
  return {
    page: document.documentElement.scrollWidth,
    rows: document.querySelectorAll('table.invoices-table tbody tr').length,
    amounts_outside: inside([...document.querySelectorAll('.invoices-table td.num')]),
    badges_outside: inside([...document.querySelectorAll('.invoices-table .badge.inv-state')]),
    narrowest_company: Math.min(...[...document.querySelectorAll('.invoices-table td[data-label=Company]')]
      .map(e => e.getBoundingClientRect().width)),
    total_row: !!document.querySelector('.invoices-table tfoot .page-total'),
  };
}"""


def test_the_invoices_list_fits_1366_and_390_px_and_its_controls_work(app, served, browser, client,  # noqa: F811
                                                                       make_tenant, sim):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    connected_tenant(client, make_tenant, sim, "List Check IT")
    for width in WIDTHS:
        page, problems = _page(browser, served, client, width)
        page.goto(served + "/invoices/")
        page.wait_for_selector("table.invoices-table")
        page.screenshot(path=str(SHOTS / f"invoices-list-{width}.png"), full_page=width < 500)
        m = page.evaluate(MEASURE)
        assert m["page"] <= width, (width, m)
        assert m["rows"] == 25 and m["amounts_outside"] == 0 and m["badges_outside"] == 0, (width, m)
        assert m["total_row"] and m["narrowest_company"] >= 100, (width, m)
        if width < 500:
            page.context.close()
            assert problems == []
            continue
        # Paging: focus lands on the first new row (G's data-focus-after-swap), not left on a vanished link.
        first = page.locator("table.invoices-table tbody tr a").first.inner_text()
        page.click("#page-older")
        page.wait_for_url("**page=2**")
        page.locator("table.invoices-table tbody tr a", has_text=first).wait_for(state="detached")
        page.wait_for_timeout(200)
        assert page.evaluate("() => document.activeElement === document.querySelector('table.invoices-table tbody tr')")
        # Sort by total, highest first: the header's link, swapped in by htmx.
        page.locator("th a.sort-link", has_text="Total").click()
        page.wait_for_url("**sort=total**")
        page.locator("th[aria-sort=descending] a", has_text="Total").wait_for()
        page.locator("th a.sort-link", has_text="Total").click()
        page.locator("th[aria-sort=ascending] a", has_text="Total").wait_for()
        # Copy a public link: shown whole, and the same link on a second copy.
        row = page.locator("table.invoices-table tbody tr").first
        row.locator("button:has-text('Copy public link')").click()
        field = page.locator("#copied-link input.link-field")
        field.wait_for()
        url = field.input_value()
        assert "/i/" in url
        assert page.evaluate("() => { const f = document.querySelector('#copied-link input.link-field');"
                             " return f.scrollWidth <= f.clientWidth + 1; }"), "the whole link is visible"
        page.wait_for_selector("button.copied")
        assert page.evaluate("navigator.clipboard.readText()") == url
        row.locator("button:has-text('Copy public link')").click()
        page.wait_for_selector("#copied-link button.copied")
        assert page.locator("#copied-link input.link-field").count() == 1
        assert page.locator("#copied-link input.link-field").input_value() == url
        page.screenshot(path=str(SHOTS / f"invoices-list-copied-{width}.png"))
        # Two PDF clicks: one progress card, replaced.
        row.locator("button:has-text('PDF')").click()
        page.wait_for_selector("#pdf-jobs .pdf-job")
        page.locator("table.invoices-table tbody tr").nth(1).locator("button:has-text('PDF')").click()
        page.wait_for_timeout(500)
        assert page.locator("#pdf-jobs .pdf-job").count() == 1
        assert page.evaluate(MEASURE)["page"] <= width
        page.context.close()
        assert problems == []


def test_the_dashboard_fits_1366_and_390_px(app, served, browser, client, make_tenant, sim):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    connected_tenant(client, make_tenant, sim, "Dashboard Check IT")
    for width in WIDTHS:
        page, problems = _page(browser, served, client, width)
        page.goto(served + "/")
        page.wait_for_selector("#dash-connection")
        page.screenshot(path=str(SHOTS / f"dashboard-{width}.png"), full_page=True)
        measured = page.evaluate("""() => ({
            page: document.documentElement.scrollWidth,
            cards: [...document.querySelectorAll('.dash-grid > .card')].map(c => c.getBoundingClientRect().right),
        })""")
        assert measured["page"] <= width and len(measured["cards"]) == 6
        assert all(right <= width for right in measured["cards"]), measured
        assert page.locator("#dash-connection").inner_text().count("Answering") == 1
        page.context.close()
        assert problems == []
