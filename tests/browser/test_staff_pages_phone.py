"""In Chromium at 390 px: the staff pages fit the phone (nothing wider than the screen), wide tables scroll inside
their own box, and the navigation collapses behind a Menu button whose panel opens with every entry on screen and
reachable (by touch and by keyboard). Screenshots land in var/screenshots/."""

from __future__ import annotations

from app.review.sweep import run_sweep
from app.services import services_of
from tests.browser.test_invoices_browser import SHOTS, browser, served, sim  # noqa: F401 (fixtures)
from tests.integration.invoice_helpers import connected_tenant

PHONE = {"width": 390, "height": 844}
PAGES = ("/", "/invoices/", "/settings/users/", "/settings/connectwise/", "/settings/branding/", "/settings/sign-in/",
         "/settings/support-access/", "/account/sessions", "/review/", "/settings/review/", "/settings/sending/",
         "/settings/audit-log/", "/settings/workspace/", "/settings/billing/")
# Every entry an owner sees in the phone menu, in order.
MENU = ["Dashboard", "Invoices", "Review", "Workspace", "ConnectWise", "Branding", "Sending", "Review rules", "Users",
        "Billing", "Support access", "Sign-in", "Audit log"]


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
    one_invoice = page.locator("table tbody a[href*='/invoices/']").first.get_attribute("href")
    page.goto(served + "/review/")
    one_review = page.locator("#inbox .row-link").first.get_attribute("href")  # an invoice's review page
    for path in (*PAGES, one_invoice, one_review):
        response = page.goto(served + path)
        assert response is not None and response.status == 200, path
        page.screenshot(path=str(SHOTS / f"phone{path.rstrip('/').replace('/', '-') or '-dashboard'}.png"), full_page=True)
        measured = page.evaluate("""() => ({
            page: document.documentElement.scrollWidth,
            header: [...document.querySelectorAll('.topbar > *')].filter(e => e.offsetParent !== null)
                .map(e => e.getBoundingClientRect().right),
            desktop_nav: document.querySelector('.mainnav').getBoundingClientRect().width,
            heading: document.querySelector('main h1').getBoundingClientRect().width,
            tables: [...document.querySelectorAll('main .table')].map(t => t.getBoundingClientRect().right),
        })""")
        assert measured["page"] <= PHONE["width"], (path, measured)
        assert measured["desktop_nav"] == 0, path  # the long bar is gone; the Menu button stands for it
        assert measured["header"] and max(measured["header"]) <= PHONE["width"], (path, measured["header"])
        assert measured["heading"] >= 250, (path, measured["heading"])  # not squeezed beside something
        assert all(right <= PHONE["width"] for right in measured["tables"]), (path, measured["tables"])


def test_the_phone_menu_opens_with_every_entry_on_screen_and_each_one_reachable(app, served, browser, client,  # noqa: F811
                                                                                make_tenant, sim):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    connected_tenant(client, make_tenant, sim, "Phone Menu IT")
    page = _phone_page(browser, served, client)
    page.goto(served + "/invoices/")
    button = page.locator("details.phonenav > summary")
    assert button.is_visible() and button.inner_text().strip() == "Menu"
    box = button.bounding_box()
    assert box is not None and box["height"] >= 44 and box["x"] + box["width"] <= PHONE["width"]  # a thumb's target
    assert not page.locator(".phonenav-links").is_visible()
    button.click()
    links = page.locator(".phonenav-links a")
    assert links.all_inner_texts() == MENU
    page.screenshot(path=str(SHOTS / "phone-menu-open.png"))
    boxes = [links.nth(i).bounding_box() for i in range(links.count())]
    assert all(b is not None and b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"] and b["height"] >= 44
               for b in boxes), boxes
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    # The current page is marked; the last entry can be scrolled to and followed.
    assert page.locator(".phonenav-links a[aria-current=page]").all_inner_texts() == ["Invoices"]
    links.filter(has_text="Audit log").click()
    page.wait_for_url(served + "/settings/audit-log/")
    # From the keyboard: Enter opens the menu, Tab reaches its links, Escape closes it and focus returns to the button.
    page.focus("details.phonenav > summary")
    page.keyboard.press("Enter")
    assert page.locator("details.phonenav[open]").count() == 1
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.closest('.phonenav-links') !== null")
    page.keyboard.press("Escape")
    assert page.locator("details.phonenav[open]").count() == 0
    assert page.evaluate("() => document.activeElement === document.querySelector('details.phonenav > summary')")
    # A tap outside closes it too.
    button.click()
    panel = page.locator(".phonenav-links").bounding_box()
    assert panel is not None and panel["y"] + panel["height"] < PHONE["height"] - 20, panel
    page.mouse.click(200, panel["y"] + panel["height"] + 10)
    assert page.locator("details.phonenav[open]").count() == 0


def test_without_javascript_the_phone_menu_still_opens(app, served, browser, client, make_tenant, sim):  # noqa: F811
    connected_tenant(client, make_tenant, sim, "Phone NoJS IT")
    context = browser.new_context(viewport=PHONE, is_mobile=True, java_script_enabled=False)
    context.add_cookies([{"name": "bi_session", "value": client.get_cookie("bi_session").value, "url": served}])
    page = context.new_page()
    page.goto(served + "/")
    page.locator("details.phonenav > summary").click()
    assert page.locator(".phonenav-links a", has_text="Branding").is_visible()
