"""In Chromium at 1366 and 390 px: the audit log (long values included) and the sessions page never scroll
sideways, and the audit sentences stay readable. Screenshots land in /tmp/bi-f2-shots/."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from app.audit.log import Actor, record
from app.tenancy import tenant_session
from tests.browser.test_invoices_browser import browser, served  # noqa: F401 (fixtures)
from tests.integration.signin_helpers import sign_in_with_code

SHOTS = Path("/tmp/bi-f2-shots")


@pytest.mark.parametrize("width", [1366, 390])
def test_the_audit_log_and_sessions_fit_the_screen(app, served, browser, make_tenant, redis_conn, width):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    t = make_tenant()
    owner = Actor.user(t.owner_id, t.owner_email)
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        record(s, t.id, owner, "branding.saved", target_type="branding", target_id=t.id,
               before={"brand_colour": "#1D4ED8"}, after={"brand_colour": "#0F766E"})
        record(s, t.id, owner, "review.approved", target_type="invoice", target_id=4242,
               after={"invoice_number": "10234"})
        record(s, t.id, owner, "review.rules_changed", target_type="review_settings", target_id=uuid.uuid4(),
               before={"footer": "x" * 300}, after={"footer": "https://example.com/" + "long-path-" * 40})
        record(s, t.id, Actor.system("connectwise member sync"), "connectwise.members_synced", target_type="users",
               after={"members": 9, "created": 3, "updated": 1, "deactivated": 0, "proposed": 0})
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
                                              "Gecko) Chrome/124.0.0.0 Safari/537.36")
    sign_in_with_code(app, client, t.owner_email)
    context = browser.new_context(viewport={"width": width, "height": 900}, is_mobile=width < 500)
    context.add_cookies([{"name": "bi_session", "value": client.get_cookie("bi_session").value, "url": served}])
    page = context.new_page()
    try:
        for path, name in (("/settings/audit-log/", "audit"), ("/account/sessions", "sessions")):
            assert page.goto(served + path).status == 200
            if name == "audit":
                page.locator(".audit-record summary").nth(1).click()  # the long values, opened
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
            sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert sizes[0] <= sizes[1], (path, sizes)
        page.goto(served + "/settings/audit-log/")
        widths = page.evaluate("() => [...document.querySelectorAll('.audit-sentence')].map(e => "
                               "e.getBoundingClientRect().width)")
        assert widths and min(widths) >= (250 if width < 500 else 600)
    finally:
        context.close()
