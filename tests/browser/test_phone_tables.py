"""In Chromium at 390 and 1366 px: the tables of people and sessions become stacked cards on a phone (each cell a
labelled line, every value at least 120 px wide, every control on screen, no sideways scroll) and stay tables on a
desktop; the users page's role picker, its Save (without JavaScript) and the confirmation's Cancel button work at
390; the staff preview and the review page reflow the invoice as the public page does (prose at least 120 px,
every amount on screen); the phone's account menu names the person. Screenshots land in /tmp/p1/ (looked at by
eye, never committed)."""

from __future__ import annotations

import re
from pathlib import Path

from app.review.sweep import run_sweep
from app.services import services_of
from tests.browser.test_invoices_browser import browser, served, sim  # noqa: F401 (fixtures)
from tests.browser.test_public_invoice_phone import AMOUNTS, MEASURE, PROSE, PROSE_MIN, longest_with_time
from tests.conftest import sign_in
from tests.integration.invoice_helpers import add_user, connected_tenant
from tests.integration.signin_helpers import sign_in_with_code

SHOTS = Path("/tmp/p1")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
CHROME_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.4 Mobile/15E148 Safari/604.1")
# Each visible cell of a card table: its label, its box, and the width its value gets beside the label.
CELLS = """(table) => [...document.querySelectorAll(table + ' tbody td')].filter(td => td.getClientRects().length)
  .map(td => { const r = td.getBoundingClientRect(), s = getComputedStyle(td);
               return {label: td.dataset.label || '', text: td.innerText.trim().slice(0, 40), left: r.left,
                       right: r.right, top: r.top,
                       value: r.width - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight),
                       shown: getComputedStyle(td, '::before').content}; })"""
CONTROLS = """(scope) => [...document.querySelectorAll(scope + ' button, ' + scope + ' select')]
  .filter(e => e.getClientRects().length)
  .map(e => { const r = e.getBoundingClientRect(); return {text: e.innerText.trim().slice(0, 30), left: r.left,
                                                            right: r.right, width: r.width, height: r.height}; })"""


def _page(browser, base: str, cookie_client, viewport: dict, *, script: bool = True):  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 500, java_script_enabled=script)
    context.add_cookies([{"name": "bi_session", "value": cookie_client.get_cookie("bi_session").value, "url": base}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def _no_sideways_scroll(page, width: int) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def _cards_fit_a_phone(page, table: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every labelled cell shows its label, sits inside the screen and leaves its value >= 120 px."""
    cells = page.evaluate(CELLS, table)
    labelled = [c for c in cells if c["label"]]
    assert labelled, table
    assert [c for c in labelled if c["shown"] != f'"{c["label"]}"'] == [], "each line says what it is"
    assert [c for c in cells if c["left"] < 0 or c["right"] > PHONE["width"]] == [], cells
    narrow = [c for c in labelled if c["value"] < PROSE_MIN]
    assert narrow == [], narrow
    controls = page.evaluate(CONTROLS, table)
    assert [c for c in controls if c["left"] < 0 or c["right"] > PHONE["width"]] == [], controls
    # No control squeezed to a letter a line: each at least WCAG's 24 px target, one or two lines high.
    assert [c for c in controls if c["width"] < 24 or c["height"] < 24 or c["height"] > 64] == [], controls
    return cells


def _a_table_on_a_desktop(page, table: str) -> None:  # type: ignore[no-untyped-def]
    assert page.locator(f"{table} thead th").first.is_visible()
    first_row = [c for c in page.evaluate(CELLS, table) if c["top"] == page.evaluate(CELLS, table)[0]["top"]]
    assert len(first_row) >= 4, first_row  # a row's cells side by side
    assert all(c["shown"] in ("none", "normal") for c in first_row), "no labels in a table"


def test_sessions_are_stacked_cards_on_a_phone_and_a_table_on_a_desktop(app, served, browser, make_tenant):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    tenant = make_tenant("Sessions Phone IT")
    mine, other = app.test_client(), app.test_client()
    mine.environ_base["HTTP_USER_AGENT"] = SAFARI_IPHONE
    other.environ_base["HTTP_USER_AGENT"] = CHROME_LINUX
    sign_in_with_code(app, other, tenant.owner_email)
    sign_in_with_code(app, mine, tenant.owner_email)
    page = _page(browser, served, mine, PHONE)
    assert page.goto(served + "/account/sessions").status == 200
    page.screenshot(path=str(SHOTS / "sessions-390.png"), full_page=True)
    _no_sideways_scroll(page, PHONE["width"])
    cells = _cards_fit_a_phone(page, "table.sessions")
    labels = [c["label"] for c in cells if c["label"]]
    assert labels.count("Signed in") == 2 and labels.count("Last used") == 2  # no column cut off any more
    assert "Chrome on Linux" in page.locator("table.sessions").inner_text()
    end = page.get_by_role("button", name="End")
    box = end.bounding_box()
    assert box and box["x"] + box["width"] <= PHONE["width"]
    end.click()
    page.wait_for_url(served + "/account/sessions")
    assert page.locator("table.sessions tbody tr").count() == 1  # the other browser's session ended

    sign_in_with_code(app, other, tenant.owner_email)
    wide = _page(browser, served, mine, DESKTOP)
    wide.goto(served + "/account/sessions")
    wide.screenshot(path=str(SHOTS / "sessions-1366.png"), full_page=True)
    _a_table_on_a_desktop(wide, "table.sessions")
    _no_sideways_scroll(wide, DESKTOP["width"])


def test_users_are_stacked_cards_on_a_phone_with_the_role_picker_and_cancel_usable(app, served, browser, client,  # noqa: F811
                                                                                   make_tenant):
    SHOTS.mkdir(parents=True, exist_ok=True)
    tenant = make_tenant("Users Phone IT")
    sign_in(client, tenant)
    viewer = add_user(app, tenant, "viewer")
    add_user(app, tenant, "owner")  # a second owner, so the first may step down
    page = _page(browser, served, client, PHONE)
    page.goto(served + "/settings/users/")
    page.screenshot(path=str(SHOTS / "users-390.png"), full_page=True)
    _no_sideways_scroll(page, PHONE["width"])
    cells = _cards_fit_a_phone(page, "table.users")
    assert {"Name", "Email", "Role", "Status"} <= {c["label"] for c in cells}
    # The picker saves on change and says so, on a phone too.
    picker = page.locator(f"#user-{viewer} select[name=role]")
    box = picker.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] and box["height"] >= 30
    picker.select_option("reviewer")
    toast = page.locator("#toasts .toast")
    toast.wait_for()
    assert "is now Reviewer" in toast.inner_text()
    # Stepping down oneself: the question in the card, its two buttons on screen; Cancel is a button.
    own = page.locator(f"#user-{tenant.owner_id}")
    own.locator("select[name=role]").select_option("viewer")
    own.get_by_text("You will lose:").wait_for()
    page.screenshot(path=str(SHOTS / "users-confirm-390.png"), full_page=True)
    _no_sideways_scroll(page, PHONE["width"])
    _cards_fit_a_phone(page, "table.users")
    cancel = own.get_by_role("button", name="Cancel")
    assert own.get_by_role("link", name="Cancel").count() == 0
    cancel.click()
    own.locator("select[name=role]").wait_for()
    assert own.locator("select[name=role]").input_value() == "owner"
    assert page.evaluate(f"() => document.activeElement.matches('#user-{tenant.owner_id} select[name=role]')")

    wide = _page(browser, served, client, DESKTOP)
    wide.goto(served + "/settings/users/")
    wide.screenshot(path=str(SHOTS / "users-1366.png"), full_page=True)
    _a_table_on_a_desktop(wide, "table.users")
    _no_sideways_scroll(wide, DESKTOP["width"])


def test_without_javascript_the_users_save_and_cancel_work_on_a_phone(app, served, browser, client, make_tenant):  # noqa: F811
    tenant = make_tenant("Users NoJS IT")
    sign_in(client, tenant)
    viewer = add_user(app, tenant, "viewer")
    add_user(app, tenant, "owner")
    page = _page(browser, served, client, PHONE, script=False)
    page.goto(served + "/settings/users/")
    row = page.locator(f"#user-{viewer}")
    row.locator("select[name=role]").select_option("reviewer")
    save = row.get_by_role("button", name="Save")
    box = save.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    save.click()
    page.wait_for_url(served + "/settings/users/")
    assert "is now Reviewer" in page.locator("#toasts").inner_text()
    assert page.locator(f"#user-{viewer} select[name=role]").input_value() == "reviewer"
    own = page.locator(f"#user-{tenant.owner_id}")
    own.locator("select[name=role]").select_option("viewer")
    own.get_by_role("button", name="Save").click()
    own.get_by_text("You will lose:").wait_for()
    page.screenshot(path=str(SHOTS / "users-confirm-nojs-390.png"), full_page=True)
    _no_sideways_scroll(page, PHONE["width"])
    own.get_by_role("button", name="Cancel").click()  # a GET form back to the page as it is
    page.wait_for_url(re.compile(r"/settings/users/\??$"))
    assert page.get_by_text("You will lose:").count() == 0
    assert page.locator(f"#user-{tenant.owner_id} select[name=role]").input_value() == "owner"


def test_the_staff_preview_and_the_review_page_reflow_the_invoice_on_a_phone(app, served, browser, client,  # noqa: F811
                                                                            make_tenant, sim):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    tenant = connected_tenant(client, make_tenant, sim, "Preview Phone IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full").outcome == "ok"  # review stores the documents
    invoice_id = longest_with_time(sim)
    for path, name in ((f"/invoices/{invoice_id}", "preview"), (f"/review/{invoice_id}", "review")):
        page = _page(browser, served, client, PHONE)
        assert page.goto(served + path).status == 200, path
        page.wait_for_selector(".invoice-frame .bi-detail-table")
        page.wait_for_load_state("networkidle")  # the send panel and other late parts, in place
        page.screenshot(path=str(SHOTS / f"{name}-390.png"), full_page=True)
        _no_sideways_scroll(page, PHONE["width"])
        notes = page.evaluate(MEASURE, ".invoice-frame .bi-detail-table tbody td.c-desc")
        assert len(notes) >= 5, (path, "the time detail's notes are on the page")
        prose = page.evaluate(MEASURE, ", ".join(f".invoice-frame {s.strip()}" for s in PROSE.split(",")))
        narrow = [c for c in prose if c["width"] < PROSE_MIN]
        assert narrow == [], (path, narrow)
        amounts = page.evaluate(MEASURE, ", ".join(f".invoice-frame {s.strip()}" for s in AMOUNTS.split(",")
                                                   if ".bi-" in s))
        assert len(amounts) > len(notes), path
        outside = [c for c in amounts if c["left"] < 0 or c["right"] > PHONE["width"]]
        assert outside == [], (path, outside)
        page.context.close()

        wide = _page(browser, served, client, DESKTOP)
        wide.goto(served + path)
        wide.wait_for_selector(".invoice-frame .bi-detail-table")
        wide.screenshot(path=str(SHOTS / f"{name}-1366.png"), full_page=True)
        assert wide.locator(".invoice-frame .bi-detail-table .bi-colheads").first.is_visible(), path  # a table
        _no_sideways_scroll(wide, DESKTOP["width"])
        wide.context.close()


def test_the_phone_account_menu_names_the_person(app, served, browser, client, make_tenant):  # noqa: F811
    tenant = make_tenant("Menu Name IT")
    sign_in(client, tenant)
    page = _page(browser, served, client, PHONE)
    page.goto(served + "/")
    assert not page.locator(".usermenu .who").is_visible() or page.locator(".usermenu .who").bounding_box()["width"] <= 1
    page.locator(".usermenu > summary").click()
    menu = page.locator(".usermenu .menu")
    page.screenshot(path=str(SHOTS / "account-menu-390.png"))
    text = menu.inner_text()
    assert "Olive Owner" in text and tenant.owner_email in text and "Owner" in text and "Menu Name IT" in text
    name = menu.locator(".menu-name").bounding_box()
    box = menu.bounding_box()
    assert name and box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
