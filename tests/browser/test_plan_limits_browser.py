"""In Chromium, a Free workspace over its limits: the users page says 3 of 3 with the upgrade link, the review
inbox says how many open invoices the plan reviews (the older reviewed ones marked read-only), the dashboard says
the plan in one line; each page fits 1366 and 390 px with the line inside the viewport's width and has no
axe-core WCAG 2.1 AA violation (screenshots in /tmp/shots-s3/, never committed)."""

from __future__ import annotations

from pathlib import Path

from app.review.sweep import run_sweep
from app.services import services_of
from tests.browser.test_accessibility import _context, axe_source, axe_violations  # noqa: F401 (fixture)
from tests.browser.test_invoices_browser import browser, served, sim  # noqa: F401 (fixtures)
from tests.browser.test_users_connectwise_browser import SIZES, _page
from tests.integration.invoice_helpers import add_user, connected_tenant
from tests.integration.test_billing_limits import FAST, free, marked_products

SHOTS = Path("/tmp/shots-s3")


def _inside(page, selector: str, width: int) -> None:  # type: ignore[no-untyped-def]
    box = page.locator(selector).bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def test_a_free_workspace_sees_its_limits_where_they_bite(app, served, browser, client, make_tenant, sim,  # noqa: F811
                                                          axe_source):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    tenant = connected_tenant(client, make_tenant, sim, "Free Plan IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full", evaluate=marked_products,
                     client_options=FAST, review_limit=30).outcome == "ok"  # 30 reviewed, as before a downgrade
    add_user(app, tenant, "viewer")
    add_user(app, tenant, "reviewer")
    free(app, tenant)
    for size, viewport in SIZES.items():
        page = _page(browser, served, client, size)
        page.goto(served + "/settings/users/")
        assert "Free plan: 3 of 3 users with access." in page.locator("#seats").inner_text()
        assert page.locator("#seats a[href='/settings/billing/']").is_visible()
        _inside(page, "#seats", viewport["width"])
        page.screenshot(path=str(SHOTS / f"users-{size}.png"), full_page=True)
        page.goto(served + "/review/?tab=all")
        limit = page.locator("#review-limit")
        assert limit.inner_text().startswith("Free plan: 25 of ")
        _inside(page, "#review-limit", viewport["width"])
        page.screenshot(path=str(SHOTS / f"review-{size}.png"), full_page=True)
        page.goto(served + "/")
        assert "Free plan: 3 of 3 users with access" in page.locator("#dash-plan").inner_text()
        _inside(page, "#dash-plan", viewport["width"])
        page.screenshot(path=str(SHOTS / f"dashboard-{size}.png"), full_page=True)
        checked = _context(browser, served, client, viewport)
        for path in ("/settings/users/", "/review/?tab=all", "/"):
            checked.goto(served + path)
            assert axe_violations(checked, axe_source) == [], (size, path)
