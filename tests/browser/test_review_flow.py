"""In Chromium at 1366 and 390 px: the invoice's review page (the document beside its flags on a desktop; flags
first, then the document, then the panels on a phone; nothing wider than the screen; the flag sentence at a
readable width) with Mark as OK from the pane; and the whole flow: sign in with a mailed code, open the inbox,
switch to Flagged, search, open the invoice, mark a flag OK, approve through the soft gate's confirmation, and the
simulator's billing status changes when the write-back job has run. No console error. Screenshots in
var/screenshots/."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.review.models import ReviewInvoice
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from tests.browser.test_invoices_browser import SHOTS, browser, served, sim  # noqa: F401 (fixtures)
from tests.integration.invoice_helpers import connected_tenant
from tests.integration.signin_helpers import latest_code
from tests.integration.signin_helpers import run_jobs as run_mail
from tests.integration.test_review_decisions import run_jobs, set_reviewers

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


def _flagged_invoice(app, tenant) -> int:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        return session.execute(select(ReviewInvoice.invoice_id).where(ReviewInvoice.is_open)
                               .order_by(ReviewInvoice.worst_flag.desc(), ReviewInvoice.open_flags.desc(),
                                         ReviewInvoice.invoice_id)).scalars().first()


MEASURE = """() => {
  const box = (sel) => { const e = document.querySelector(sel); return e ? e.getBoundingClientRect().toJSON() : null; };
  const frame = document.querySelector('.invoice-frame');
  return {
    page: document.documentElement.scrollWidth,
    // The document may scroll sideways inside its own frame; everything else must fit the screen.
    widest: Math.max(...[...document.querySelectorAll('main *')]
        .filter(e => !e.parentElement.closest('.invoice-frame') && !e.parentElement.closest('main .table'))
        .map(e => e.getBoundingClientRect().right)),
    flags: box('#review-flags'), document: box('.review-document'), panels: box('.review-panels'),
    sentence: Math.min(...[...document.querySelectorAll('.flag-sentence')].map(e => e.getBoundingClientRect().width)),
    frame: frame ? {client: frame.clientWidth, scroll: frame.scrollWidth} : null,
    invoice: box('.bi-invoice'),
    font: parseFloat(getComputedStyle(document.querySelector('.bi-lines') || document.body).fontSize),
  };
}"""


@pytest.mark.parametrize("screen", SCREENS)
def test_the_invoice_review_page_fits_the_screen_and_marks_a_flag_ok(
        app, served, browser, client, make_tenant, sim, redis_conn, screen):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    tenant = connected_tenant(client, make_tenant, sim, "Review Page Browser IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full").outcome == "ok"
    invoice_id = _flagged_invoice(app, tenant)
    viewport = SCREENS[screen]
    page, problems = _page(browser, served, client, viewport)
    response = page.goto(f"{served}/review/{invoice_id}")
    assert response is not None and response.status == 200
    page.wait_for_selector("#review-flags .flag")
    page.screenshot(path=str(SHOTS / f"{screen}-review-invoice.png"), full_page=True)
    m = page.evaluate(MEASURE)
    assert m["page"] <= viewport["width"] and m["widest"] <= viewport["width"], m
    if screen == "desktop":
        # Two columns: the document on the left, flags and panels beside it.
        assert m["document"]["x"] < m["flags"]["x"] and m["flags"]["x"] == m["panels"]["x"], m
        assert m["document"]["width"] >= 760 and m["frame"]["scroll"] <= m["frame"]["client"], m
    else:
        # Stacked: flags first, then the document, then the panels.
        assert m["flags"]["y"] < m["document"]["y"] < m["panels"]["y"], m
        assert m["sentence"] >= 250, m
        assert m["invoice"]["width"] >= 300 and m["font"] >= 10, m
    assert m["sentence"] >= 250, m
    box = page.locator("#review-flags .flag input[type=checkbox]").first
    box.check()
    page.wait_for_selector("#review-flags .flag.is-ok")
    assert page.locator("#review-flags .flag.is-ok .flag-ok").first.inner_text().strip() == "Marked OK"
    page.wait_for_selector("#review-timeline .tl-item")
    page.screenshot(path=str(SHOTS / f"{screen}-review-invoice-marked.png"), full_page=False)
    page.locator("#review-flags .flag.is-ok input[type=checkbox]").first.uncheck()
    page.wait_for_selector("#review-flags .flag.is-ok", state="detached")
    assert problems == []


def _flow_invoice(app, tenant) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """An open invoice in "New" with the most error and warning flags (two or more, so one is left to confirm
    after one is marked OK), reviewed by the owner alone; its number."""
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        row = session.execute(select(ReviewInvoice).where(ReviewInvoice.is_open, ReviewInvoice.status_id == 1,
                                                          ReviewInvoice.blocking_flags >= 2)
                              .order_by(ReviewInvoice.blocking_flags.desc(), ReviewInvoice.invoice_id)).scalars().first()
        assert row is not None
        found = row.invoice_id, row.invoice_number
    set_reviewers(app, tenant, found[0], tenant.owner_id)
    return found


@pytest.mark.parametrize("screen", SCREENS)
def test_sign_in_find_an_invoice_mark_a_flag_ok_and_approve_it_into_connectwise(
        app, served, browser, client, make_tenant, sim, redis_conn, screen):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    sim.reset()
    tenant = connected_tenant(client, make_tenant, sim, "Review Flow IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full").outcome == "ok"
    invoice_id, number = _flow_invoice(app, tenant)
    viewport = SCREENS[screen]
    context = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 500)
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    # Sign in as a person does: email, the mailed code.
    page.goto(f"{served}/sign-in")
    page.fill("input[name=email]", tenant.owner_email)
    page.click("text=Email me a code")
    page.wait_for_url(f"{served}/sign-in/code")
    run_mail(app)
    page.fill("input[name=code]", latest_code(app, tenant.owner_email))
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{served}/")

    # The inbox: switch to Flagged, search for the invoice, open it.
    if page.locator("details.phonenav > summary").is_visible():  # a phone: the navigation is behind Menu
        page.click("details.phonenav > summary")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Review", exact=True).click()
    page.wait_for_url(f"{served}/review/")
    page.wait_for_selector("#inbox .inbox-row")
    page.screenshot(path=str(SHOTS / f"{screen}-flow-inbox.png"), full_page=False)
    page.click("#tab-flagged")
    page.wait_for_selector("#tab-flagged.active")
    assert "tab=flagged" in page.url
    page.locator("#inbox-q").press_sequentially(number, delay=20)  # as typed: the list follows the keys
    page.wait_for_url(re.compile(r"[?&]q="))  # the list swapped in for the search pushes its URL
    page.wait_for_selector("#inbox .inbox-rows > li:nth-child(2)", state="detached")
    assert page.locator("#inbox .inbox-rows > li").count() == 1
    assert "tab=flagged" in page.url and "q=" in page.url
    page.screenshot(path=str(SHOTS / f"{screen}-flow-inbox-search.png"), full_page=False)
    page.click(f"#inbox .row-link:has(.inv-number:text-is('{number}'))")
    page.wait_for_url(f"{served}/review/{invoice_id}")

    # Mark one blocking flag OK; the other still asks before approving.
    flag = page.locator("#review-flags .flag:has(.badge.sev-error), #review-flags .flag:has(.badge.sev-warning)").first
    marked_sentence = flag.locator(".flag-sentence").inner_text()
    flag.locator("input[type=checkbox]").check()
    page.wait_for_selector("#review-flags .flag.is-ok")
    page.click("#review-decision button:has-text('Approve')")
    page.wait_for_selector("#review-decision [role=alertdialog] .gate-flags li")
    gate = page.inner_text("#review-decision .gate-flags")
    assert marked_sentence not in gate, "a flag marked OK no longer asks"
    page.screenshot(path=str(SHOTS / f"{screen}-flow-gate.png"), full_page=False)
    page.click("#review-decision button:has-text('Approve anyway')")
    page.wait_for_selector("#review-decision .writeback.wb-pending, #review-decision .writeback.wb-running")
    assert sim.state.data["invoices"].get(invoice_id)["status"]["id"] == 1, "written back by the job, not the request"
    run_jobs(app, redis_conn)  # the write-back job
    page.wait_for_selector("#review-decision .writeback.wb-done")
    assert sim.state.data["invoices"].get(invoice_id)["status"]["name"] == "Approved"
    page.screenshot(path=str(SHOTS / f"{screen}-flow-approved.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]
    assert problems == []
    context.close()
