"""In Chromium at 1366 and 390 px: staff invite a guest reviewer from an invoice's review page and copy the link
(shown once); a fresh browser context, with no cookie of ours, opens the link, sees the invoice, comments and
approves as the guest; the staff page's timeline then names "<name> (guest, <email>)" as having approved; the link
lifetime on the settings page refuses 120 days beside the field and saves 7. Nothing
wider than the screen on the guest's page or the staff panel, no console error. Screenshots in var/screenshots/."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.review.models import ReviewInvoice
from app.review.sweep import run_sweep
from app.security.limits import reset_limits
from app.services import services_of
from tests.browser.test_invoices_browser import SHOTS, browser, served, sim  # noqa: F401 (fixtures)
from tests.browser.test_review_flow import SCREENS, _page
from tests.integration.invoice_helpers import connected_tenant
from tests.integration.test_review_decisions import session_of, set_reviewers

GUEST_EMAIL = "ap" + chr(64) + "client.example"
GUEST_LABEL = f"Ana Ruiz (guest, {GUEST_EMAIL})"
# The document may scroll sideways inside its own frame, and wide tables inside theirs; all else fits the screen.
WIDTH = """() => Math.max(document.documentElement.scrollWidth,
  ...[...document.querySelectorAll('main *')]
     .filter(e => !e.parentElement.closest('.invoice-frame') && !e.parentElement.closest('main .table'))
     .map(e => e.getBoundingClientRect().right))"""


def _clean_invoice(app, tenant) -> int:  # type: ignore[no-untyped-def]
    """An open invoice with no flag (so approving asks nothing first), "New" in ConnectWise, the owner a reviewer."""
    with session_of(app, tenant) as s:
        invoice_id = s.execute(select(ReviewInvoice.invoice_id).where(
            ReviewInvoice.is_open, ReviewInvoice.status_id == 1, ReviewInvoice.open_flags == 0)
            .order_by(ReviewInvoice.invoice_id)).scalars().first()
    assert invoice_id is not None
    set_reviewers(app, tenant, invoice_id, tenant.owner_id)
    return invoice_id


@pytest.mark.parametrize("screen", SCREENS)
def test_a_guest_opens_the_copied_link_in_a_fresh_browser_comments_and_approves(app, served, browser, client,  # noqa: F811
                                                                              make_tenant, sim, redis_conn, screen):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    with app.app_context():
        reset_limits()
    sim.reset()
    tenant = connected_tenant(client, make_tenant, sim, "Guest Browser IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full").outcome == "ok"
    invoice_id = _clean_invoice(app, tenant)
    viewport = SCREENS[screen]
    staff, staff_problems = _page(browser, served, client, viewport)

    # Staff: invite a guest reviewer and copy the link, shown once.
    staff.goto(f"{served}/review/{invoice_id}")
    number = staff.locator(".page-head h1 .mono").inner_text()
    panel = staff.locator("#review-guest-links")
    panel.locator("input[name=email]").fill(GUEST_EMAIL)
    panel.locator("input[name=name]").fill("Ana Ruiz")
    panel.locator("button:has-text('Invite')").click()
    staff.wait_for_selector("#review-guest-links #guest-new-url")
    panel = staff.locator("#review-guest-links")
    url = panel.locator("#guest-new-url").input_value()
    assert re.fullmatch(r"https?://[^/]+/g/[A-Za-z0-9_-]{43}", url), url
    assert panel.locator("button[data-copy]").get_attribute("data-copy") == url
    panel.locator("button[data-copy]").click()
    staff.wait_for_selector("#review-reviewers :text('Ana Ruiz')")
    assert panel.locator(".guest-link").count() == 1 and GUEST_EMAIL in panel.inner_text()
    panel.screenshot(path=str(SHOTS / f"{screen}-guest-invited.png"))
    assert staff.evaluate(WIDTH) <= viewport["width"]

    # The guest: a fresh context, none of our cookies; the token leaves the address bar.
    guest_context = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 500)
    assert guest_context.cookies() == []
    guest = guest_context.new_page()
    guest.set_default_timeout(20_000)
    guest_problems: list[str] = []
    guest.on("console", lambda m: guest_problems.append(m.text) if m.type in ("error", "warning") else None)
    guest.on("pageerror", lambda e: guest_problems.append(str(e)))
    guest.goto(served + url[url.index("/g/"):])
    assert guest.url == f"{served}/g/review"
    assert number in guest.locator(".page-head h1").inner_text()
    assert "Ana Ruiz" in guest.locator(".crumbs").inner_text()
    guest.locator(".invoice-frame").wait_for()
    assert guest.locator(".page-head a:has-text('Download PDF')").count() == 1
    assert guest.locator("text=Sign out").count() == 0  # no staff menu
    guest.screenshot(path=str(SHOTS / f"{screen}-guest-review.png"), full_page=False)
    assert guest.evaluate(WIDTH) <= viewport["width"]

    guest.fill("#guest-comment", "Line 2 matches our PO, thanks")
    guest.click("#review-comment-box button:has-text('Send')")
    guest.wait_for_selector("#review-timeline :text('Line 2 matches our PO')")
    assert guest.locator("#guest-comment").input_value() == ""
    guest.click("#review-decision button:has-text('Approve')")
    guest.wait_for_selector("#review-timeline .tl-item:has-text('approved')")
    approved = guest.locator("#review-timeline .tl-item", has_text="approved").first.inner_text()
    assert GUEST_LABEL in approved
    guest.locator("#review-timeline").screenshot(path=str(SHOTS / f"{screen}-guest-approved.png"))
    guest.screenshot(path=str(SHOTS / f"{screen}-guest-after.png"), full_page=True)
    assert guest.evaluate(WIDTH) <= viewport["width"]
    assert guest_problems == [], guest_problems
    guest_context.close()

    # Staff: the timeline names the guest as having approved, and the comment.
    staff.goto(f"{served}/review/{invoice_id}")
    timeline = staff.locator("#review-timeline")
    item = timeline.locator(".tl-item", has_text=GUEST_LABEL).filter(has_text="approved")
    assert item.count() == 1, timeline.inner_text()
    assert re.search(re.escape(GUEST_LABEL) + r"\s+approved", item.inner_text()), item.inner_text()
    assert "Line 2 matches our PO, thanks" in timeline.inner_text()
    assert "Last used" in staff.locator("#review-guest-links").inner_text()
    assert "never" not in staff.locator("#review-guest-links .guest-link").inner_text()
    timeline.screenshot(path=str(SHOTS / f"{screen}-guest-staff-timeline.png"))
    assert staff.evaluate(WIDTH) <= viewport["width"]

    # The link lifetime on the review settings page: out of range is refused beside the field, then saved.
    staff.goto(f"{served}/settings/review/")
    card = staff.locator("#review-guest-settings")
    card.locator("input[name=days]").fill("120")
    card.locator("button:has-text('Save')").click()
    staff.wait_for_selector("#guest-link-days-error")
    card.screenshot(path=str(SHOTS / f"{screen}-guest-settings-refused.png"))
    assert staff.evaluate(WIDTH) <= viewport["width"]
    staff.locator("#review-guest-settings input[name=days]").fill("7")
    staff.locator("#review-guest-settings button:has-text('Save')").click()
    staff.wait_for_selector("#review-guest-settings :text('New guest links work for 7 days.')")
    assert staff.locator("#review-guest-settings input[name=days]").input_value() == "7"
    # The refused lifetime's 422 is the one resource the browser reports failing; nothing else may complain.
    assert [p for p in staff_problems if "status of 422" not in p] == [], staff_problems
    assert len([p for p in staff_problems if "status of 422" in p]) == 1
