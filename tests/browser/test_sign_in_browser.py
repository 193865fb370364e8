"""In a real browser (Chromium through Playwright): sign in with an emailed code, sign out, sign in with SSO."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app.tenancy import tenant_session
from app.users.models import User
from tests.integration.signin_helpers import latest_code, run_jobs
from tests.oidc_fixtures import GOOGLE_ACCOUNTS

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("var/screenshots")


@pytest.fixture()
def served(config, oidc_provider, redis_conn) -> Iterator[tuple[object, str]]:  # type: ignore[no-untyped-def]
    from app import create_app

    app = create_app(replace(config, **oidc_provider.config_values()))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        app.extensions["engine"].dispose()


@pytest.fixture()
def browser_page():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            browser.close()


def test_sign_in_with_a_code_sign_out_and_sign_in_with_sso(served, browser_page, make_tenant):
    app, base = served
    email = GOOGLE_ACCOUNTS["ann"]["email"].lower()
    t = make_tenant(f"Browser MSP {uuid.uuid4().hex[:4]}", email=f"owner-{uuid.uuid4().hex[:6]}" + chr(64) + "x.example")
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        existing = s.query(User).filter(User.email == email).one_or_none()
        if existing is None:
            s.add(User(id=uuid.uuid4(), tenant_id=t.id, email=email, name="Ann Admin", role="admin", active=True))
    page = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{base}/sign-in")
    page.fill("input[name=email]", t.owner_email)
    page.click("text=Email me a code")
    page.wait_for_url(f"{base}/sign-in/code")
    run_jobs(app)
    page.fill("input[name=code]", latest_code(app, t.owner_email))
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{base}/")
    assert t.owner_email in page.content() or "Olive Owner" in page.content()
    page.screenshot(path=str(SHOTS / "signed-in-with-code.png"))

    page.click("details.usermenu > summary")
    page.click("text=Sign out")
    page.wait_for_url(f"{base}/sign-in")
    assert "You are signed out." in page.content()
    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/sign-in")  # the old session is gone on the server

    page.click("text=Continue with Google")
    page.wait_for_url(lambda url: url.rstrip("/") in (base, f"{base}/sign-in/choose"))
    if page.url.endswith("/sign-in/choose"):  # Ann may belong to other tenants made by other tests
        page.click(f"button:has-text('{current_name(app, t.id)}')")
        page.wait_for_url(f"{base}/")
    assert "Ann Admin" in page.content()
    page.screenshot(path=str(SHOTS / "signed-in-with-sso.png"))


def current_name(app, tenant_id) -> str:  # type: ignore[no-untyped-def]
    from app.tenants.models import Tenant

    with tenant_session(tenant_id, app.extensions["session_factory"]) as s:
        return s.get(Tenant, tenant_id).name
