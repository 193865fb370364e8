"""In Chromium: on the users page a role change says "saved" in a toast and reducing your own role asks first; on
the ConnectWise page a save says so and drops the test report it outdated. Both pages fit 1366 and 390 px
(screenshots in /tmp/shots-f1/, never committed)."""

from __future__ import annotations

from pathlib import Path

from app.connectwise.members import run_sync
from tests.browser.test_invoices_browser import browser, served, sim  # noqa: F401 (fixtures)
from tests.integration.invoice_helpers import add_user, connected_tenant

SHOTS = Path("/tmp/shots-f1")
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def _page(browser, base: str, client, size: str):  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone")
    context.add_cookies([{"name": "bi_session", "value": client.get_cookie("bi_session").value, "url": base}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def _fits(page, width: int) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    assert page.evaluate("() => document.querySelector('main h1').getBoundingClientRect().width") >= 250


def test_users_page_toasts_a_role_change_and_asks_before_reducing_your_own(app, served, browser, client,  # noqa: F811
                                                                           make_tenant, sim):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    tenant = connected_tenant(client, make_tenant, sim, "Users Page IT")
    with app.app_context():
        run_sync(str(tenant.id))  # members arrive listed, with no access
    viewer = add_user(app, tenant, "viewer")
    add_user(app, tenant, "owner")  # a second owner, so the first may step down
    for size, viewport in SIZES.items():
        page = _page(browser, served, client, size)
        page.goto(served + "/settings/users/")
        _fits(page, viewport["width"])
        assert page.locator("#roles .role-line").count() == 6 and "No access" in page.locator("#roles").inner_text()
        page.screenshot(path=str(SHOTS / f"users-{size}.png"), full_page=True)
    page = _page(browser, served, client, "desktop")
    page.goto(served + "/settings/users/")
    page.locator(f"#user-{viewer} select[name=role]").select_option("reviewer")
    toast = page.locator("#toasts .toast")
    toast.wait_for()
    assert "is now Reviewer" in toast.inner_text()
    # Your own row: a confirmation in place, nothing changed until you confirm.
    own = page.locator(f"#user-{tenant.owner_id}")
    own.locator("select[name=role]").select_option("viewer")
    own.get_by_text("You will lose:").wait_for()
    page.screenshot(path=str(SHOTS / "users-confirm-desktop.png"), full_page=True)
    own.get_by_role("button", name="Cancel").click()  # a real button (issue 14's "looks like a button")
    own.locator("select[name=role]").wait_for()
    assert own.locator("select[name=role]").input_value() == "owner"
    assert page.evaluate(f"() => document.activeElement.matches('#user-{tenant.owner_id} select[name=role]')")


def test_connectwise_page_toasts_a_save_and_drops_the_outdated_report(app, served, browser, client,  # noqa: F811
                                                                      make_tenant, sim):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    connected_tenant(client, make_tenant, sim, "CW Page IT")
    for size, viewport in SIZES.items():
        page = _page(browser, served, client, size)
        page.goto(served + "/settings/connectwise/")
        page.get_by_role("button", name="Test connection").click()
        page.locator("#test-report .checks").wait_for()
        _fits(page, viewport["width"])
        page.screenshot(path=str(SHOTS / f"connectwise-{size}.png"), full_page=True)
    page = _page(browser, served, client, "desktop")
    page.goto(served + "/settings/connectwise/")
    assert page.locator("#test-report .checks").is_visible()
    page.fill("input[name=public_key]", "a-changed-public-key")
    page.get_by_role("button", name="Save changes").click()
    toast = page.locator("#toasts .toast")
    toast.wait_for()
    assert "ConnectWise connection saved" in toast.inner_text()
    assert page.locator("#test-report .checks").count() == 0
    page.screenshot(path=str(SHOTS / "connectwise-saved-desktop.png"), full_page=True)
