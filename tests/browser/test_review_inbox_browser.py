"""The review inbox in Chromium at 1366 and 390 px: a tab chosen from the keyboard swaps the list, keeps focus on
the tab and pushes its URL; typing searches after a pause; a sort link orders the rows; back and forward walk those
lists again; on a phone each row is three lines inside the screen with the company at a readable width. No console
error. Screenshots in var/screenshots/."""

from __future__ import annotations

import re

import pytest

from app.review.sweep import run_sweep
from app.services import services_of
from tests.browser.test_invoices_browser import SHOTS, browser, served, sim  # noqa: F401 (fixtures)
from tests.integration.invoice_helpers import connected_tenant

SCREENS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
ROWS = """() => [...document.querySelectorAll('#inbox .inbox-row')].map(li => {
  const link = li.querySelector('.row-link'), company = li.querySelector('.c-company');
  // The row's lines: the vertical centres of its cells, cells within 6 px of each other sharing a line.
  const centres = [...link.children].map(c => c.getBoundingClientRect()).filter(b => b.height > 0)
      .map(b => (b.top + b.bottom) / 2).sort((a, b) => a - b);
  const lines = {size: centres.filter((c, i) => i === 0 || c - centres[i - 1] > 6).length};
  return {number: li.querySelector('.inv-number').textContent, right: li.getBoundingClientRect().right,
          company: company.getBoundingClientRect().width, lines: lines.size,
          amount: li.querySelector('.c-amount').textContent};
})"""


def _numbers(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all("#inbox .inv-number", "els => els.map(e => e.textContent)")


@pytest.mark.parametrize("screen", SCREENS)
def test_tabs_search_sort_and_history_in_the_browser(app, served, browser, client, make_tenant, sim,  # noqa: F811
                                                     redis_conn, screen):
    SHOTS.mkdir(parents=True, exist_ok=True)
    tenant = connected_tenant(client, make_tenant, sim, "Inbox Browser IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full").outcome == "ok"
    viewport = SCREENS[screen]
    context = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 500)
    context.add_cookies([{"name": "bi_session", "value": client.get_cookie("bi_session").value, "url": served}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(f"{served}/review/")
    page.wait_for_selector("#inbox .inbox-row")
    first = _numbers(page)
    # caret="initial": Playwright's caret hiding leaves style="" on every input, which a history restore would then
    # re-apply against the page's CSP (style-src 'self') and log as errors.
    page.screenshot(path=str(SHOTS / f"{screen}-inbox.png"), full_page=False, caret="initial")
    rows = page.evaluate(ROWS)
    assert all(r["right"] <= viewport["width"] for r in rows), rows[:3]
    if screen == "phone":
        assert all(r["lines"] <= 3 for r in rows), [r for r in rows if r["lines"] > 3][:3]
        assert min(r["company"] for r in rows) >= 150, "the company keeps a readable width"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]

    # From the keyboard: focus the tabs, move to Flagged, Enter.
    page.focus("#tab-needs_review")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "tab-flagged"
    page.keyboard.press("Enter")
    page.wait_for_selector("#tab-flagged.active")
    assert page.url.endswith("/review/?tab=flagged")
    assert page.evaluate("() => document.activeElement.id") == "tab-flagged", "focus stays on the tab"
    flagged = _numbers(page)
    assert flagged and flagged != first
    assert page.locator("#inbox .flag-badge.none").count() == 0, "every flagged row has a red or amber badge"

    # Typing searches once the keys pause (and pushes the URL); the tab is kept.
    target = flagged[-1]
    page.locator("#inbox-q").press_sequentially(target.lower(), delay=15)
    page.wait_for_url(re.compile(r"[?&]q="))
    assert "tab=flagged" in page.url
    page.wait_for_function("n => [...document.querySelectorAll('#inbox .inv-number')].map(e => e.textContent)"
                           ".every(t => t === n)", arg=target)

    # A sort link orders the rows on the server; the search and tab stay.
    page.fill("#inbox-q", "")
    page.locator("#inbox-q").press("Backspace")  # a key, so the emptied search is sent
    page.wait_for_url(re.compile(r"/review/\?tab=flagged$"))
    page.click("#sort-amount")
    page.wait_for_url(re.compile(r"sort=amount"))
    page.wait_for_selector("#sort-amount.sorted")
    by_amount = _numbers(page)
    assert sorted(by_amount) == sorted(flagged) and "tab=flagged" in page.url
    page.screenshot(path=str(SHOTS / f"{screen}-inbox-sorted.png"), full_page=False, caret="initial")

    # Back walks the lists again, forward returns.
    page.go_back()
    page.wait_for_url(re.compile(r"/review/\?tab=flagged$"))
    page.wait_for_selector("#sort-amount:not(.sorted)")
    assert _numbers(page) == flagged
    page.go_forward()
    page.wait_for_url(re.compile(r"sort=amount"))
    page.wait_for_selector("#sort-amount.sorted")
    assert _numbers(page) == by_amount
    # A full load of a pushed URL shows the same list.
    page.reload()
    page.wait_for_selector("#sort-amount.sorted")
    assert _numbers(page) == by_amount
    assert problems == []
    context.close()
