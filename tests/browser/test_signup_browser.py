"""Sign-up in Chromium at desktop and phone widths: "Start free" from the sign-in page, the emailed code, the
workspace name with the browser's time zone filled in by the page's script, landing on the dashboard; no page wider
than the screen."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from app.auth.directory import memberships
from app.tenancy import tenant_session
from app.tenants.models import TenantSettings
from tests.browser.test_sign_in_browser import CHROMIUM, served  # noqa: F401 (fixture)
from tests.integration.signin_helpers import AT, latest_code, run_jobs

SHOTS = Path("/tmp/s1-signup-shots")


@pytest.mark.parametrize(("width", "zone"), [(1366, "America/Chicago"), (390, "Europe/Berlin")])
def test_a_new_msp_signs_up_in_the_browser(served, width, zone):  # noqa: F811
    from playwright.sync_api import sync_playwright

    app, base = served
    email = f"owner-{uuid.uuid4().hex[:6]}{AT}new-msp.example"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": width, "height": 860}, timezone_id=zone,
                                          is_mobile=width < 500)
            page = context.new_page()
            page.set_default_timeout(15_000)
            widths: dict[str, int] = {}

            def look(name: str) -> None:
                widths[name] = page.evaluate("document.documentElement.scrollWidth")
                page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)

            page.goto(base + "/sign-in")
            look("sign-in")
            page.get_by_role("link", name="Start free").click()
            page.wait_for_url(re.compile(r".*/start$"))
            assert page.get_by_role("link", name="Sign up with Google").is_visible()
            look("start")
            page.fill("input[name=email]", email)
            page.get_by_role("button", name="Email me a code").click()
            page.wait_for_url(re.compile(r".*/start/code$"))
            look("code")
            run_jobs(app)
            code = latest_code(app, email)
            assert code
            page.fill("input[name=code]", code)
            page.get_by_role("button", name="Continue").click()
            page.wait_for_url(re.compile(r".*/start/workspace$"))
            assert page.input_value("input[name=timezone]") == zone  # filled by signup-timezone.js
            page.get_by_role("button", name="Create workspace").click()  # empty: refused inline
            assert page.locator("#workspace-error").is_visible()
            look("workspace-error")
            page.get_by_label("Company name").fill("Northwind Managed IT")
            page.get_by_label("Your name").fill("Nora North")
            page.get_by_role("button", name="Create workspace").click()
            page.wait_for_url(re.compile(r".*/$"))
            assert page.get_by_text("Northwind Managed IT is on a 14-day Pro trial").is_visible()
            look("dashboard")
            # The same address again, in another browser: after the code, its workspace or another one.
            page = browser.new_context(viewport={"width": width, "height": 860}, is_mobile=width < 500).new_page()
            page.goto(base + "/start")
            page.fill("input[name=email]", email)
            page.get_by_role("button", name="Email me a code").click()
            page.wait_for_url(re.compile(r".*/start/code$"))
            run_jobs(app)
            page.fill("input[name=code]", latest_code(app, email) or "")
            page.get_by_role("button", name="Continue").click()
            page.get_by_role("heading", name="This email already has a workspace").wait_for()
            assert page.get_by_role("button", name=re.compile("Sign in to Northwind Managed IT")).is_visible()
            assert page.get_by_role("link", name="Create another workspace").is_visible()
            look("existing")
            print(f"{width} px: page widths {widths}")
            assert all(w <= width for w in widths.values()), widths
        finally:
            browser.close()
    [m] = memberships(app.extensions["session_factory"], email)
    with tenant_session(m.tenant_id, app.extensions["session_factory"]) as s:
        assert s.query(TenantSettings).one().timezone == zone
