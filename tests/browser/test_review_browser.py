"""In Chromium at 1366 and 390 px: the review page (after a sweep, with its flags) and the rule settings page fit the
screen, and "Sweep now" swaps in the polled progress panel without a console error. Screenshots in var/screenshots/."""

from __future__ import annotations

import pytest

from app.review.sweep import run_sweep
from app.services import services_of
from tests.browser.test_invoices_browser import SHOTS, browser, served, sim  # noqa: F401 (fixtures)
from tests.integration.invoice_helpers import connected_tenant

SCREENS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def _page(browser, base: str, cookie_client, viewport: dict):  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 500)
    context.add_cookies([{"name": "bi_session", "value": cookie_client.get_cookie("bi_session").value, "url": base}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page, problems


@pytest.mark.parametrize("screen", SCREENS)
def test_the_review_pages_fit_the_screen_and_sweep_now_swaps_in_the_progress_panel(
        app, served, browser, client, make_tenant, sim, redis_conn, screen):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    tenant = connected_tenant(client, make_tenant, sim, "Review Browser IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full").outcome == "ok"
    viewport = SCREENS[screen]
    page, problems = _page(browser, served, client, viewport)
    for path in ("/review/", "/settings/review/"):
        response = page.goto(served + path)
        assert response is not None and response.status == 200, path
        page.screenshot(path=str(SHOTS / f"{screen}{path.rstrip('/').replace('/', '-')}.png"), full_page=True)
        # A wide table scrolls inside its own box on a phone, so what it holds is not measured, the box is.
        widest = page.evaluate("""() => Math.max(document.documentElement.scrollWidth,
            ...[...document.querySelectorAll('main *')].filter(e => !e.parentElement.closest('main .table'))
               .map(e => e.getBoundingClientRect().right))""")
        assert widest <= viewport["width"], (path, widest)
    page.goto(served + "/review/")
    assert page.locator(".badge.sev-warning").first.is_visible()
    page.get_by_role("button", name="Sweep now").click()
    page.wait_for_selector("#sweep-panel[hx-trigger='every 1s']")
    assert "waiting for a worker" in page.inner_text("#sweep-panel")
    assert problems == []
