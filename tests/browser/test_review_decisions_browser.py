"""In Chromium at 1366 and 390 px: approving a flagged invoice asks first (the soft gate lists its flags), the
confirmed approval is written back (the panel polls until the simulator's status has changed), a rejection without
a reason is refused beside the field, "Change status" loads the tenant's statuses when opened; bulk approve from the
inbox previews, runs and sums up; the status mapping loads on the settings page. Nothing wider than the screen, no
console error. Screenshots in var/screenshots/."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.review.models import ReviewInvoice
from app.review.sweep import run_sweep
from app.services import services_of
from tests.browser.test_invoices_browser import SHOTS, browser, served, sim  # noqa: F401 (fixtures)
from tests.browser.test_review_flow import SCREENS, _page
from tests.integration.invoice_helpers import connected_tenant
from tests.integration.test_review_decisions import run_jobs, session_of, set_reviewers

# The document and wide tables may scroll sideways inside their own boxes; everything else must fit the screen.
WIDTH = """() => Math.max(document.documentElement.scrollWidth,
  ...[...document.querySelectorAll('main *')]
     .filter(e => !e.parentElement.closest('.invoice-frame') && !e.parentElement.closest('main .table'))
     .map(e => e.getBoundingClientRect().right))"""


def _invoices(app, tenant) -> tuple[int, int, list[int]]:  # type: ignore[no-untyped-def]
    """A flagged invoice, a clean one, and the other clean ones (for bulk); all "New" in ConnectWise, the owner
    their one reviewer."""
    with session_of(app, tenant) as s:
        base = select(ReviewInvoice.invoice_id).where(ReviewInvoice.is_open, ReviewInvoice.status_id == 1)
        flagged = s.execute(base.where(ReviewInvoice.blocking_flags > 0).order_by(ReviewInvoice.invoice_id)
                            ).scalars().first()
        clean = list(s.execute(base.where(ReviewInvoice.open_flags == 0).order_by(ReviewInvoice.invoice_id)
                               ).scalars())
    assert flagged is not None and len(clean) >= 3
    for invoice_id in (flagged, *clean):
        set_reviewers(app, tenant, invoice_id, tenant.owner_id)
    return flagged, clean[0], clean[1:]


@pytest.mark.parametrize("screen", SCREENS)
def test_decisions_in_a_browser(app, served, browser, client, make_tenant, sim, redis_conn, screen):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    sim.reset()
    tenant = connected_tenant(client, make_tenant, sim, "Decisions Browser IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full").outcome == "ok"
    flagged, clean, bulk = _invoices(app, tenant)
    viewport = SCREENS[screen]
    page, problems = _page(browser, served, client, viewport)

    # The soft gate, then the confirmed approval written back to the simulator.
    page.goto(f"{served}/review/{flagged}")
    page.click("#review-decision button:has-text('Approve')")
    page.wait_for_selector("#review-decision [role=alertdialog] .gate-flags li")
    page.locator("#review-decision").screenshot(path=str(SHOTS / f"{screen}-decision-gate.png"))
    assert page.evaluate(WIDTH) <= viewport["width"]
    page.click("#review-decision button:has-text('Approve anyway')")
    page.wait_for_selector("#review-decision .writeback.wb-pending, #review-decision .writeback.wb-running")
    run_jobs(app, redis_conn)
    page.wait_for_selector("#review-decision .writeback.wb-done")
    assert sim.state.data["invoices"].get(flagged)["status"]["name"] == "Approved"
    page.wait_for_selector("#review-timeline :text('set the status in ConnectWise')")
    page.locator("#review-decision").screenshot(path=str(SHOTS / f"{screen}-decision-approved.png"))
    page.click("#review-decision button:has-text('Undo approval')")
    page.wait_for_selector("#review-decision .badge.state-needs_review")

    # A rejection needs a reason (beside the field), and the status picker loads when opened.
    page.goto(f"{served}/review/{clean}")
    page.click("#review-decision summary:has-text('Reject')")
    page.click("#review-decision button:has-text('Reject')")
    page.wait_for_selector("#reject-reason-error")
    page.fill("#review-decision textarea[name=reason]", "Hours on line 2 look doubled")
    page.click("#review-decision button:has-text('Reject')")
    page.wait_for_selector("#review-decision .decision-reason")
    page.click("#review-decision summary:has-text('Change status')")
    page.wait_for_selector("#review-decision select[name=status_id]")
    page.select_option("#review-decision select[name=status_id]", label="Ready for Review")
    page.click("#review-decision button:has-text('Change status')")
    page.wait_for_selector("#review-decision :text('Changing the status to')")
    page.locator("#review-decision").screenshot(path=str(SHOTS / f"{screen}-decision-rejected.png"))
    assert page.evaluate(WIDTH) <= viewport["width"]

    # Bulk approve from the inbox.
    page.goto(f"{served}/review/")
    listed = {int(v) for v in page.locator("#bulk-form input[name=invoice_id]").evaluate_all(
        "boxes => boxes.map(b => b.value)")}
    bulk = sorted(listed & set(bulk))[:2]
    assert len(bulk) == 2, "two clean invoices on the inbox's first page"
    for invoice_id in bulk:
        page.check(f"#bulk-form input[name=invoice_id][value='{invoice_id}']")
    page.click("#bulk-approve")
    page.wait_for_selector("#bulk-panel :text('will be approved and written back')")
    assert page.locator("#bulk-panel").count() == 1, "the panel replaced itself"
    page.locator("#bulk-panel").screenshot(path=str(SHOTS / f"{screen}-bulk-preview.png"))
    page.click("#bulk-panel button:has-text('Approve')")
    page.wait_for_selector("#bulk-panel .bulk-progress")
    run_jobs(app, redis_conn, "default")
    page.wait_for_selector("#bulk-panel :text('Bulk approve finished')")
    run_jobs(app, redis_conn)
    page.wait_for_selector("#bulk-panel :text('Written back to ConnectWise: 2.')")
    page.locator("#bulk-panel").screenshot(path=str(SHOTS / f"{screen}-bulk-done.png"))
    assert page.evaluate(WIDTH) <= viewport["width"]

    # The status mapping on the settings page.
    page.goto(f"{served}/settings/review/")
    page.wait_for_selector("#review-status-map select[name=approved]")
    page.locator("#review-status-map").screenshot(path=str(SHOTS / f"{screen}-status-map.png"))
    assert page.evaluate(WIDTH) <= viewport["width"]
    # The refused rejection's 422 is the one resource the browser reports failing; nothing else may complain.
    assert [p for p in problems if "status of 422" not in p] == []
    assert len([p for p in problems if "status of 422" in p]) == 1
