"""In Chromium: the branding editor's live preview and save, the invoices page (search, copy link, PDF with
progress), an invoice's preview with its links, and the public page; no CSP violations or script errors anywhere.
Screenshots land in var/screenshots/ for a person to look at."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from werkzeug.serving import make_server

from tests.integration.invoice_helpers import connected_tenant

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("var/screenshots")


@pytest.fixture(scope="module")
def sim():  # type: ignore[no-untyped-def]
    import cwsim

    handle = cwsim.serve_in_thread(port=0, invoices=120)
    yield handle
    handle.stop()


@pytest.fixture()
def served(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture()
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _logo_png(path: Path) -> Path:
    img = Image.new("RGBA", (360, 110), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((0, 10, 90, 100), radius=18, fill=(16, 122, 87, 255))
    draw.text((110, 35), "NORTHWIND IT", fill=(16, 50, 40, 255), font_size=34)
    out = io.BytesIO()
    img.save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return path


def _page_with_session(browser, base: str, cookie_client):  # type: ignore[no-untyped-def]
    """A browser page carrying the test client's signed-in session cookie, collecting console problems."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    cookies = []
    for name in ("bi_session", "__Host-bi_session"):
        cookie = cookie_client.get_cookie(name)
        if cookie is not None:
            cookies.append({"name": name, "value": cookie.value, "url": base})
    assert cookies, "the test client holds a session cookie"
    context.add_cookies(cookies)
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page, problems


def _run_jobs(app) -> None:  # type: ignore[no-untyped-def]
    from rq import SimpleWorker

    from app.jobs.queue import get_queue

    queue = get_queue(app.extensions["redis"], "pdf")
    with app.app_context():
        SimpleWorker([queue], connection=app.extensions["redis"], serializer=queue.serializer).work(burst=True)


def test_branding_invoices_and_public_link_in_a_browser(app, served, browser, client, make_tenant, sim, tmp_path):
    from app.security.limits import reset_limits

    with app.app_context():
        reset_limits()
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = served
    connected_tenant(client, make_tenant, sim, "Northwind IT")
    page, problems = _page_with_session(browser, base, client)

    # Branding editor: the preview loads by itself, follows unsaved changes, and Save keeps them.
    page.goto(f"{base}/settings/branding/")
    page.wait_for_selector("#preview .bi-invoice")
    page.screenshot(path=str(SHOTS / "branding-editor.png"), full_page=False)
    page.fill("input[name=brand_colour]", "#0f7a57")
    page.fill("textarea[name=footer_text]", "Northwind IT ehf. · Þekking · Zażółć gęślą jaźń · € ₹ ¥")
    page.locator("#preview .bi-invoice", has_text="Zażółć").wait_for()  # (no wait_for_function: CSP forbids eval)
    page.set_input_files("input[name=logo]", str(_logo_png(tmp_path / "logo.png")))
    page.wait_for_selector("#preview img.bi-logo[src^='data:image/png']")
    page.check("input[name=logo_position][value=right]")
    page.wait_for_selector("#preview .bi-logo-right")
    page.screenshot(path=str(SHOTS / "branding-editor-unsaved.png"), full_page=False)
    page.set_input_files("input[name=logo]", {"name": "evil.svg", "mimeType": "image/svg+xml",
                                              "buffer": b"<svg xmlns='http://www.w3.org/2000/svg'></svg>"})
    page.wait_for_selector("text=Logo not used: SVG logos are not accepted")
    page.set_input_files("input[name=logo]", str(tmp_path / "logo.png"))
    page.click("button:has-text('Save branding')")
    page.wait_for_selector("text=Branding saved")
    page.wait_for_selector("#preview .bi-invoice")
    page.screenshot(path=str(SHOTS / "branding-saved.png"), full_page=False)
    page.locator(".td-table").screenshot(path=str(SHOTS / "branding-time-detail.png"))

    # Invoices page: search, copy a public link, a PDF with progress.
    page.goto(f"{base}/invoices/")
    page.wait_for_selector("table.invoices-table")
    page.screenshot(path=str(SHOTS / "invoices.png"), full_page=False)
    page.fill("input[name=q]", "INV-1001")
    page.wait_for_url("**/invoices/?q=INV-1001**")
    page.locator("table.invoices-table tbody tr", has_text="INV-1001").first.wait_for()
    assert page.locator("table.invoices-table tbody tr").count() <= 11
    row = page.locator("table.invoices-table tbody tr").first
    row.locator("button:has-text('Copy public link')").click()
    page.wait_for_selector("input.link-field")
    link = page.input_value("input.link-field")
    assert "/i/" in link
    page.wait_for_selector("button.copied")
    assert page.evaluate("navigator.clipboard.readText()") == link
    row.locator("button:has-text('PDF')").click()
    page.wait_for_selector(".pdf-job")
    page.screenshot(path=str(SHOTS / "invoices-pdf-progress.png"), full_page=False)
    with page.expect_download() as download_info:
        _run_jobs(app)
        page.wait_for_selector(".pdf-job .badge.ok")
    download = download_info.value
    assert download.suggested_filename.startswith("Invoice-INV-1001") and download.suggested_filename.endswith(".pdf")
    page.screenshot(path=str(SHOTS / "invoices-pdf-ready.png"), full_page=False)

    # One invoice: the branded document inside the app, and its links.
    page.goto(f"{base}/invoices/3")
    page.wait_for_selector(".bi-invoice")
    page.evaluate("document.querySelector('input[name=expires_days]').removeAttribute('max')")
    page.fill("input[name=expires_days]", "400")  # past the browser's own check: the server's 422 is shown
    page.click("button:has-text('Create link')")
    page.wait_for_selector("text=Expiry must be between 1 and 365 days")
    page.fill("input[name=expires_days]", "14")
    page.click("button:has-text('Create link')")
    page.wait_for_selector(".new-link input.link-field")
    page.screenshot(path=str(SHOTS / "invoice-preview.png"), full_page=True)

    # The public page, as the client sees it (a fresh browser: no session).
    visitor = browser.new_context(viewport={"width": 1100, "height": 1000})
    public = visitor.new_page()
    public_problems: list[str] = []
    public.on("console", lambda m: public_problems.append(m.text) if m.type in ("error", "warning") else None)
    link = base + link[link.index("/i/"):]  # BASE_URL is the configured origin; this server listens elsewhere
    response = public.goto(link)
    assert response.status == 200 and response.headers["x-robots-tag"].startswith("noindex")
    public.wait_for_selector(".bi-invoice img.bi-logo")
    colour = public.evaluate("getComputedStyle(document.querySelector('.bi-invoice')).getPropertyValue('--bi-brand')")
    assert colour.strip() == "#0f7a57"
    public.screenshot(path=str(SHOTS / "public-page.png"), full_page=True)
    # On a phone the invoice reads without sideways scrolling.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    phone.goto(link)
    phone.wait_for_selector(".bi-invoice")
    phone.screenshot(path=str(SHOTS / "public-page-phone.png"), full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    gone = public.goto(link.rsplit("/", 1)[0] + "/" + "A" * 43)
    assert gone.status == 404
    public.screenshot(path=str(SHOTS / "public-not-valid.png"))
    visitor.close()

    csp = [p for p in problems + public_problems if "Content Security Policy" in p or "Refused" in p]
    assert csp == [], csp
    errors = [p for p in problems + public_problems if "Failed to load resource" not in p]
    assert errors == [], errors
