"""In Chromium at 1366 and 390 px: on an invoice's review page, type a comment, "@bri" opens the mention popup
(served filtered, the invoice's reviewers left out), ArrowDown and Enter pick Brian Chen as a chip and show the
options, Enter sends; the comment shows in the activity as my bubble with the @Brian Chen chip. Nothing wider than
the screen, no console error. Screenshots in var/screenshots/."""

from __future__ import annotations

import uuid

import pytest

from app.review.routing import seed_routing
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from app.users.models import User
from tests.browser.test_invoices_browser import SHOTS, browser, served, sim  # noqa: F401 (fixtures)
from tests.browser.test_review_flow import SCREENS, _page
from tests.browser.test_review_reviewers_browser import _routed_to
from tests.integration.invoice_helpers import connected_tenant

WIDEST = """() => Math.max(document.documentElement.scrollWidth,
  ...[...document.querySelectorAll('#review-comment-box *, #review-timeline *')]
     .map(e => e.getBoundingClientRect().right))"""


@pytest.mark.parametrize("screen", SCREENS)
def test_a_comment_with_a_mention_typed_from_the_keyboard(app, served, browser, client, make_tenant, sim,  # noqa: F811
                                                          redis_conn, screen):
    SHOTS.mkdir(parents=True, exist_ok=True)
    sim.reset()
    tenant = connected_tenant(client, make_tenant, sim, "Comments Browser IT")
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.add(User(id=uuid.uuid4(), tenant_id=tenant.id, email="brian.chen" + chr(64) + "example.com",
                         name="Brian Chen", role="reviewer", active=True, cw_member_id=143))
    services = services_of(app)
    assert run_sweep(services, str(tenant.id), kind="full").outcome == "ok"
    assert seed_routing(services, str(tenant.id)).outcome == "ok"
    invoice_id = _routed_to(sim, [141, 146])
    viewport = SCREENS[screen]
    page, problems = _page(browser, served, client, viewport)

    page.goto(f"{served}/review/{invoice_id}")
    box = page.locator("#review-comment-box")
    text = box.locator("textarea[name=text]")
    assert box.locator(".comment-options").is_hidden()  # no mention yet
    text.click()
    page.keyboard.type("Hours look high, ")
    page.keyboard.type("@bri")
    popup = box.locator(".mention-popup")
    popup.locator("[role=option]:has-text('Brian Chen')").wait_for()
    names = popup.locator(".mention-name").all_inner_texts()
    assert names == ["Brian Chen"] and "Jordan Morales" not in names
    assert text.get_attribute("aria-expanded") == "true"
    box.screenshot(path=str(SHOTS / f"{screen}-comment-popup.png"))
    page.keyboard.press("ArrowDown")  # one option: the move wraps back onto it
    assert popup.locator("[aria-selected=true]").inner_text().startswith("Brian Chen")
    page.keyboard.press("Enter")
    assert popup.is_hidden() and text.input_value() == "Hours look high, @Brian Chen "
    assert box.locator(".mention-chip").inner_text().startswith("@Brian Chen")
    assert box.locator(".comment-options").is_visible()
    assert box.locator("input[name=add_reviewers]").is_checked()
    assert not box.locator("input[name=email_mentioned]").is_checked()
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("can you check?")
    assert text.input_value() == "Hours look high, @Brian Chen \ncan you check?"
    page.keyboard.type(" @zz")  # Esc closes the popup without picking
    page.wait_for_timeout(400)
    page.keyboard.press("Escape")
    assert popup.is_hidden()
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Enter")  # sends

    bubble = page.locator("#review-timeline .tl-comment.tl-mine .tl-bubble")
    bubble.wait_for()
    assert bubble.locator(".mention-chip").inner_text() == "@Brian Chen"
    assert bubble.inner_text() == "Hours look high, @Brian Chen\ncan you check?"  # pre-line drops the end space
    page.wait_for_selector("#review-comment-box .comment-notice:has-text('Added as reviewer: Brian Chen.')")
    page.wait_for_selector("#review-reviewers .reviewer-name:has-text('Brian Chen')")
    assert box.locator("textarea[name=text]").input_value() == ""
    assert page.evaluate("() => document.activeElement.name") == "text"  # ready for the next one
    align = bubble.evaluate("b => getComputedStyle(b.closest('.tl-body')).textAlign")
    assert align == "right"
    page.locator("#review-timeline").screenshot(path=str(SHOTS / f"{screen}-comment-posted.png"))
    page.screenshot(path=str(SHOTS / f"{screen}-comment-page.png"), full_page=False)
    assert page.evaluate(WIDEST) <= viewport["width"]
    assert problems == [], problems
