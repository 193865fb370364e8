"""In Chromium at 390 px: the staff pages fit the phone (nothing wider than the screen, every menu entry on screen),
and wide tables scroll inside their own box. Screenshots land in var/screenshots/."""

from __future__ import annotations

from app.review.sweep import run_sweep
from app.services import services_of
from tests.browser.test_invoices_browser import SHOTS, browser, served, sim  # noqa: F401 (fixtures)
from tests.integration.invoice_helpers import connected_tenant

PHONE = {"width": 390, "height": 844}
PAGES = ("/", "/invoices/", "/settings/users/", "/settings/connectwise/", "/settings/branding/", "/settings/sign-in/",
         "/settings/support-access/", "/account/sessions", "/review/", "/settings/review/")


def _phone_page(browser, base: str, cookie_client):  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    context.add_cookies([{"name": "bi_session", "value": cookie_client.get_cookie("bi_session").value, "url": base}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def test_every_staff_page_fits_a_390_px_phone(app, served, browser, client, make_tenant, sim):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    tenant = connected_tenant(client, make_tenant, sim, "Phone Check IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full").outcome == "ok"  # so review has invoices
    page = _phone_page(browser, served, client)
    page.goto(served + "/invoices/")
    one_invoice = page.locator("table a").first.get_attribute("href")
    page.goto(served + "/review/")
    one_review = page.locator("#inbox .row-link").first.get_attribute("href")  # an invoice's review page
    for path in (*PAGES, one_invoice, one_review):
        response = page.goto(served + path)
        assert response is not None and response.status == 200, path
        page.screenshot(path=str(SHOTS / f"phone{path.rstrip('/').replace('/', '-') or '-dashboard'}.png"), full_page=True)
        measured = page.evaluate("""() => ({
            page: document.documentElement.scrollWidth,
            nav: [...document.querySelectorAll('.mainnav a')].map(a => a.getBoundingClientRect().right),
            heading: document.querySelector('main h1').getBoundingClientRect().width,
            tables: [...document.querySelectorAll('main .table')].map(t => t.getBoundingClientRect().right),
        })""")
        assert measured["page"] <= PHONE["width"], (path, measured)
        assert measured["nav"] and max(measured["nav"]) <= PHONE["width"], (path, measured["nav"])
        assert measured["heading"] >= 250, (path, measured["heading"])  # not squeezed beside something
        assert all(right <= PHONE["width"] for right in measured["tables"]), (path, measured["tables"])
