"""axe-core (WCAG 2.1 A and AA) in Chromium on every page a person meets: signed out (sign-in, code entry, the public
invoice, the guest review), signed in (dashboard, invoices, an invoice, every settings page, review), each at 1366 px
and at 390 px (a phone), and the header's menus open;
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
PHONE = {"width": 390, "height": 844}


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
    assert result["testEngine"]["version"] == "4.14.1" and result["toolOptions"]["runOnly"]["values"] == WCAG
    found = []
    for violation in result["violations"]:
        for node in violation["nodes"]:
            found.append(f"{violation['id']} [{violation['impact']}] {' '.join(map(str, node['target']))}: "
                         f"{violation['help']} ({node.get('failureSummary', '').strip()})")
    return found


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366px", "390px"])
def test_every_page_has_no_wcag_21_aa_violation(app, served, browser, client, make_tenant, sim, axe_source,  # noqa: F811
                                                 viewport):
    with app.app_context():
        reset_limits()
    sim.reset()
    SHOTS.mkdir(parents=True, exist_ok=True)
    tenant = connected_tenant(client, make_tenant, sim, "Accessible IT")
    assert run_sweep(services_of(app), str(tenant.id), kind="full").outcome == "ok"
    found: dict[str, list[str]] = {}

    # Signed out: sign-in and code entry (a fresh context, the owner's address typed).
    guest = _context(browser, served, viewport=viewport)
    guest.goto(served + "/sign-in")
    found["/sign-in"] = axe_violations(guest, axe_source)
    guest.fill("input[name=email]", tenant.owner_email)
    guest.click("button[type=submit]")
    guest.wait_for_url(re.compile(r".*/sign-in/code$"))
    run_jobs(app)
    found["/sign-in/code"] = axe_violations(guest, axe_source)
    # Sign-up ("Start free"): the email form and its code page.
    guest.goto(served + "/start")
    found["/start"] = axe_violations(guest, axe_source)
    guest.fill("input[name=email]", "new-msp" + chr(64) + "example.com")
    guest.click("button[type=submit]")
    guest.wait_for_url(re.compile(r".*/start/code$"))
    found["/start/code"] = axe_violations(guest, axe_source)

    page = _context(browser, served, client, viewport)
    page.goto(served + "/invoices/")
    invoice_path = page.locator("table tbody a[href*='/invoices/']").first.get_attribute("href")
    assert invoice_path
    invoice_id = int(invoice_path.rstrip("/").rsplit("/", 1)[-1])
    page.goto(served + "/review/")
    review_path = page.locator("#inbox .row-link").first.get_attribute("href")
    assert review_path
    paths = ["/", "/invoices/", invoice_path, "/settings/connectwise/", "/settings/branding/", "/settings/users/",
             "/settings/audit-log/", "/account/sessions", "/settings/support-access/", "/settings/sign-in/",
             "/review/", review_path, "/settings/review/", "/settings/sending/", "/settings/workspace/",
             "/settings/billing/"]
    for path in paths:
        response = page.goto(served + path)
        assert response is not None and response.status == 200, path
        if path == "/settings/branding/":
            page.wait_for_selector("#preview .bi-invoice")
        page.wait_for_load_state("networkidle")  # htmx-loaded panels are part of the page
        found[path] = axe_violations(page, axe_source)

    # The public invoice page and the guest review page, each in a context with no cookie of ours.
    token = make_link(client, invoice_id)
    public = _context(browser, served, viewport=viewport)
    public.goto(f"{served}/i/{token}")
    found["/i/<token>"] = axe_violations(public, axe_source)
    from app.review import guests

    review_invoice = int(review_path.rstrip("/").rsplit("/", 1)[-1])
    with session_of(app, tenant) as s:
        _link, url = guests.issue_link(s, services_of(app), tenant.id, review_invoice, email="ap" + chr(64) + "client.example",
                                       name="Ana Ruiz", member_id=None, created_by=None)
    guest_page = _context(browser, served, viewport=viewport)
    guest_page.goto(served + url[url.index("/g/"):])
    guest_page.wait_for_url(re.compile(r".*/g/review$"))
    found["/g/review"] = axe_violations(guest_page, axe_source)

    report = "\n".join(f"{path}: {line}" for path, lines in found.items() for line in lines)
    assert len(found) == 22 and not report, f"axe-core found at {viewport['width']} px:\n" + report


# The colour behind an element: its own background or the first ancestor's that is not transparent.
BACKGROUND_JS = """el => { for (let e = el; e; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    if (c && c !== 'transparent' && !/rgba\\(.*, 0\\)$/.test(c)) return c; }
  return 'rgb(255, 255, 255)'; }"""


def _rgb(css: str) -> tuple[float, float, float]:
    r, g, b = (float(part) for part in re.findall(r"[\d.]+", css)[:3])
    return r, g, b


def contrast(one: str, two: str) -> float:
    """WCAG 2.1 contrast ratio of two computed CSS colours (rgb()/rgba() strings)."""
    def luminance(rgb: tuple[float, float, float]) -> float:
        lin = [c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    high, low = sorted((luminance(_rgb(one)), luminance(_rgb(two))), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _signed_in(app, browser, served, client, make_tenant, sim, name: str, viewport=DESKTOP):  # type: ignore[no-untyped-def]  # noqa: F811
    with app.app_context():
        reset_limits()
    sim.reset()
    tenant = connected_tenant(client, make_tenant, sim, name)
    page = _context(browser, served, client, viewport)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served)
    return tenant, page


def _focused(page) -> dict:  # type: ignore[no-untyped-def]
    return page.evaluate("""() => { const e = document.activeElement;
        return {tag: e.tagName, cls: e.className, id: e.id, text: (e.innerText || e.value || '').slice(0, 80),
                menu: !!e.closest('details[data-menu]'), open: !!e.closest('details[open]')}; }""")


def test_escape_closes_the_account_and_settings_menus_and_gives_focus_back_to_their_button(
        app, served, browser, client, make_tenant, sim):  # noqa: F811
    _tenant, page = _signed_in(app, browser, served, client, make_tenant, sim, "Escape Keys IT")
    page.goto(served + "/invoices/")
    for menu in ("details.usermenu", "details.navmenu"):
        page.focus(f"{menu} > summary")
        page.keyboard.press("Enter")
        assert page.locator(f"{menu}[open]").count() == 1, menu
        page.keyboard.press("Tab")  # into the menu's first link
        assert _focused(page)["tag"] == "A" and _focused(page)["open"], menu
        page.keyboard.press("Escape")
        assert page.locator(f"{menu}[open]").count() == 0, menu
        assert page.evaluate(f"() => document.activeElement === document.querySelector('{menu} > summary')"), menu
    # The account menu's accessible name holds the person's visible name (WCAG 2.5.3).
    summary = page.locator("details.usermenu > summary")
    assert summary.get_attribute("aria-label") is None
    assert summary.locator(".who").inner_text() in summary.inner_text()


def test_the_focus_ring_is_at_least_3_to_1_against_what_is_behind_it(app, served, browser, client, make_tenant, sim):  # noqa: F811
    _tenant, page = _signed_in(app, browser, served, client, make_tenant, sim, "Focus Ring IT")
    page.goto(served + "/invoices/")
    measured = []
    for _ in range(14):  # the skip link, the header, the filters, the first rows' controls
        page.keyboard.press("Tab")
        ring = page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
            return {what: e.tagName + ' ' + (e.innerText || e.name || '').slice(0, 30), style: s.outlineStyle,
                    width: parseFloat(s.outlineWidth), colour: s.outlineColor}; }""")
        behind = page.evaluate(f"({BACKGROUND_JS})(document.activeElement.parentElement)")
        measured.append((ring["what"], ring["style"], ring["width"], round(contrast(ring["colour"], behind), 2)))
    assert all(style != "none" and width >= 2 for _what, style, width, _ratio in measured), measured
    assert min(ratio for *_rest, ratio in measured) >= 3.0, measured


def test_focus_lands_on_the_new_link_the_first_new_row_and_the_ready_pdf_after_each_swap(
        app, served, browser, client, make_tenant, sim):  # noqa: F811
    from tests.browser.test_invoices_browser import _run_jobs

    _tenant, page = _signed_in(app, browser, served, client, make_tenant, sim, "Focus Swaps IT")
    page.goto(served + "/invoices/")
    first_row = page.locator("table.invoices-table tbody tr").first
    # Copy public link: the link's field (so the keyboard user can read or copy it again).
    first_row.get_by_role("button", name="Copy public link").click()
    page.wait_for_selector("#copied-link input.link-field")
    assert page.evaluate("() => document.activeElement.matches('#copied-link input.link-field')"), _focused(page)
    # Paging: the first row of the new page (not the top of the document, not the pager left behind).
    page.click("#page-older")
    page.locator(".pager", has_text="Page 2 of").wait_for()
    page.wait_for_timeout(200)  # settle (htmx's settle delay)
    focused = page.evaluate("() => document.activeElement === document.querySelector('table.invoices-table tbody tr')")
    assert focused, _focused(page)
    # PDF: the download button once the job is done.
    page.locator("table.invoices-table tbody tr").first.get_by_role("button", name="PDF").click()
    page.wait_for_selector("#pdf-jobs .pdf-job")
    _run_jobs(app)
    page.wait_for_selector("#pdf-jobs a[download]", timeout=30_000)
    page.wait_for_timeout(300)  # settle
    assert page.evaluate("() => document.activeElement.matches('#pdf-jobs a[download]')"), _focused(page)


def test_the_branding_save_bar_never_covers_the_field_with_focus(app, served, browser, client, make_tenant, sim):  # noqa: F811
    _tenant, page = _signed_in(app, browser, served, client, make_tenant, sim, "Save Bar IT",
                               viewport={"width": 1366, "height": 700})
    page.goto(served + "/settings/branding/")
    page.wait_for_selector("#preview .bi-invoice")
    # The preview is not a live region (it would read the whole invoice on each keystroke); one status line is.
    assert page.locator("#preview").get_attribute("aria-live") is None
    assert page.locator("#preview-status[role=status]").inner_text().startswith("Preview updated: invoice ")
    covered = []
    page.focus("#branding-form select[name=preview_invoice]")
    for _ in range(40):  # every control of the form, from the keyboard
        page.keyboard.press("Tab")
        state = page.evaluate("""() => { const e = document.activeElement, bar = document.querySelector('.form-actions');
            if (!e.closest('#branding-form') || bar.contains(e)) return null;
            return {name: e.name || e.tagName, bottom: e.getBoundingClientRect().bottom,
                    bar: bar.getBoundingClientRect().top, height: innerHeight}; }""")
        if state is None:
            break
        page.wait_for_timeout(50)  # the rAF nudge
        state = page.evaluate("""() => { const e = document.activeElement, bar = document.querySelector('.form-actions');
            return {name: e.name || e.tagName, bottom: e.getBoundingClientRect().bottom,
                    bar: bar.getBoundingClientRect().top}; }""")
        if state["bottom"] > state["bar"]:
            covered.append(state)
    assert covered == [], covered


def test_the_open_menus_and_the_phone_layout_have_no_wcag_violation(app, served, browser, client, make_tenant, sim,  # noqa: F811
                                                                    axe_source):
    _tenant, page = _signed_in(app, browser, served, client, make_tenant, sim, "Open Menus IT")
    found: dict[str, list[str]] = {}
    page.goto(served + "/invoices/")
    page.click("details.navmenu > summary")
    found["desktop, Settings open"] = axe_violations(page, axe_source)
    page.click("details.usermenu > summary")
    found["desktop, account menu open"] = axe_violations(page, axe_source)
    phone = _context(browser, served, client, {"width": 390, "height": 844})
    for path in ("/", "/invoices/", "/settings/branding/", "/settings/billing/"):
        phone.goto(served + path)
        phone.wait_for_load_state("networkidle")
        found[f"phone {path}"] = axe_violations(phone, axe_source)
    phone.click("details.phonenav > summary")
    found["phone, Menu open"] = axe_violations(phone, axe_source)
    report = "\n".join(f"{where}: {line}" for where, lines in found.items() for line in lines)
    assert not report, "axe-core found:\n" + report
