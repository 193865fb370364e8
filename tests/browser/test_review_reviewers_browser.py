"""In Chromium at 1366 and 390 px: an invoice's reviewers seeded from its ConnectWise routing show on its review page
with their initials and states; the picker loads people, narrows them as you type, adds one by keyboard; a duplicate
is refused beside the form; Remove takes one off and the timeline says so. Nothing wider than the screen, no console
error. Screenshots in var/screenshots/."""

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
from tests.integration.invoice_helpers import connected_tenant

WIDEST = """() => Math.max(document.documentElement.scrollWidth,
  ...[...document.querySelectorAll('#review-reviewers *')].map(e => e.getBoundingClientRect().right))"""


def _routed_to(sim, members: list[int]) -> int:  # type: ignore[no-untyped-def]  # noqa: F811
    found: dict[int, list[int]] = {}
    for r in sorted(sim.state.data["routings"].iter(), key=lambda r: (r["invoice"]["id"], r["sequenceNumber"])):
        found.setdefault(r["invoice"]["id"], []).append(r["member"]["id"])
    open_ids = {s["id"] for s in sim.state.data["billingStatuses"].iter() if not s["closedFlag"] and not s["sentFlag"]}
    return next(i["id"] for i in sorted(sim.state.data["invoices"].iter(), key=lambda i: i["id"])
                if i["status"]["id"] in open_ids and found.get(i["id"]) == members)


@pytest.mark.parametrize("screen", SCREENS)
def test_reviewers_panel_in_a_browser(app, served, browser, client, make_tenant, sim, redis_conn, screen):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    sim.reset()
    tenant = connected_tenant(client, make_tenant, sim, "Reviewers Browser IT")
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
    panel = page.locator("#review-reviewers")
    panel.locator(".reviewer-name:has-text('Jordan Morales')").wait_for()
    assert panel.locator(".reviewer-avatar").all_inner_texts() == ["JM", "FN"]
    assert panel.locator(".reviewer-state").all_inner_texts() == ["Waiting for review · ConnectWise member"] * 2
    page.wait_for_selector("#review-reviewers select[name=who] option[value^='user:']", state="attached")
    panel.screenshot(path=str(SHOTS / f"{screen}-reviewers.png"))
    assert page.evaluate(WIDEST) <= viewport["width"]

    # Type to narrow, pick by keyboard, add.
    search = panel.locator("input[name=q]")
    search.fill("bri")
    page.wait_for_function("""() => { const s = document.querySelector('#review-reviewers select[name=who]');
        return s && [...s.options].some(o => o.text.startsWith('Brian Chen'))
            && ![...s.options].some(o => o.text.startsWith('Laura')); }""")
    select = panel.locator("select[name=who]")
    select.focus()
    page.keyboard.press("ArrowDown")
    assert select.evaluate("s => s.options[s.selectedIndex].text").startswith("Brian Chen")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    panel.locator(".reviewer-name:has-text('Brian Chen')").wait_for()
    page.wait_for_selector("#review-reviewers .reviewers-notice:has-text('Brian Chen added as reviewer.')")
    page.wait_for_selector("#review-timeline :text('added Brian Chen as reviewer')")

    # A duplicate (Laura is offered only while not a reviewer, so force the value) is refused beside the form.
    page.wait_for_selector("#review-reviewers select[name=who] option[value^='member:']", state="attached")
    panel.locator("select[name=who]").evaluate(
        "s => { s.options[1].value = 'member:146'; s.selectedIndex = 1; }")
    panel.locator("button:has-text('Add')").click()
    page.wait_for_selector("#review-reviewers .field-error:has-text('Faith Nguyen is already a reviewer')")

    # Remove one.
    panel.locator("button[aria-label='Remove Jordan Morales as reviewer']").click()
    page.wait_for_selector("#review-reviewers .reviewers-notice:has-text('Removed Jordan Morales.')")
    assert "Jordan Morales" not in panel.locator(".reviewer-list").inner_text()
    page.wait_for_selector("#review-timeline :text('removed Jordan Morales')")
    panel.screenshot(path=str(SHOTS / f"{screen}-reviewers-changed.png"))
    assert page.evaluate(WIDEST) <= viewport["width"]
    # The refused duplicate's 422 is the one console line (the browser logs it); nothing else.
    assert [p for p in problems if "status of 422" not in p] == [], problems
    assert len([p for p in problems if "status of 422" in p]) == 1
