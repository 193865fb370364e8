"""From nothing to a paying customer in Chromium at 1366 px: a new MSP signs up through /start (the code from the
dev outbox), walks the onboarding checklist against the ConnectWise simulator (connect and test, sync members, save
branding, run the first sweep, add a colleague), upgrades through Stripe Checkout (the session fake in front of
localstripe: paying makes the subscription there and its signed events reach the live app's webhook) and sees Pro on
the billing page, opens the Customer Portal and comes back; then the billing page at 390 px, no page wider than the screen."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from app.auth.directory import memberships
from app.billing.models import TenantBilling
from app.tenancy import tenant_session
from tests.billing_sessions_fake import Price, SessionsFake, http_deliver
from tests.billing_stripe import StripeSettings
from tests.browser.test_invoices_browser import sim  # noqa: F401 (fixture)
from tests.browser.test_sign_in_browser import CHROMIUM
from tests.integration.signin_helpers import AT, latest_code, run_jobs

SHOTS = Path("/tmp/s5-signup-to-pro")


@pytest.fixture()
def stack(config, stripe_settings: StripeSettings, redis_conn) -> Iterator[tuple[Any, str, SessionsFake]]:
    """The app served on a loopback port with Stripe pointed at the session fake, and the fake delivering to it."""
    from app import create_app

    fake = SessionsFake(stripe_settings.url, stripe_settings.secret_key, {
        stripe_settings.price_monthly: Price(stripe_settings.price_monthly, "month", 2900),
        stripe_settings.price_yearly: Price(stripe_settings.price_yearly, "year", 29000)},
        webhook_secret=stripe_settings.webhook_secret)
    app = create_app(replace(config, STRIPE_SECRET_KEY=stripe_settings.secret_key,
                             STRIPE_WEBHOOK_SECRET=stripe_settings.webhook_secret,
                             STRIPE_PRICE_PRO_MONTHLY=stripe_settings.price_monthly,
                             STRIPE_PRICE_PRO_YEARLY=stripe_settings.price_yearly, STRIPE_API_BASE=fake.url))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    fake.deliver = http_deliver(base + "/webhooks/stripe", stripe_settings.webhook_secret)
    try:
        yield app, base, fake
    finally:
        server.shutdown()
        fake.stop()
        app.extensions["engine"].dispose()


def _step_done(page, key: str) -> bool:  # type: ignore[no-untyped-def]
    return page.locator(f"#step-{key}").get_attribute("data-done") == "true"


def test_a_new_msp_signs_up_walks_the_checklist_and_upgrades_to_pro(stack, sim):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    app, base, fake = stack
    email = f"owner-{uuid.uuid4().hex[:6]}{AT}fabrikam-it.example"
    SHOTS.mkdir(parents=True, exist_ok=True)
    widths: dict[str, int] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
            page.set_default_timeout(20_000)

            def look(name: str) -> None:
                widths[name] = page.evaluate("document.documentElement.scrollWidth")
                page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

            def dashboard() -> None:
                page.get_by_role("link", name="Dashboard").first.click()
                page.wait_for_url(base + "/")

            # Sign up.
            page.goto(base + "/sign-in")
            page.get_by_role("link", name="Start free").click()
            page.fill("input[name=email]", email)
            page.get_by_role("button", name="Email me a code").click()
            page.wait_for_url(re.compile(r".*/start/code$"))
            run_jobs(app)
            page.fill("input[name=code]", latest_code(app, email) or "")
            page.get_by_role("button", name="Continue").click()
            page.wait_for_url(re.compile(r".*/start/workspace$"))
            page.get_by_label("Company name").fill("Fabrikam Managed IT")
            page.get_by_label("Your name").fill("Frida Fab")
            page.get_by_role("button", name="Create workspace").click()
            page.wait_for_url(base + "/")
            expect(page.locator("#onboarding")).to_contain_text("0 of 5 done")
            look("1-dashboard-new")

            # 1. Connect ConnectWise (the simulator) and test the connection.
            page.locator("#step-connect").get_by_role("link").click()
            page.fill("input[name=site]", sim.url)
            page.fill("input[name=company_id]", sim.company_id)
            page.fill("input[name=public_key]", sim.public_key)
            page.fill("input[name=private_key]", sim.private_key)
            page.get_by_role("button", name="Connect ConnectWise").click()
            page.get_by_role("button", name="Test connection").click()
            expect(page.locator("#test-report")).not_to_be_empty()
            # 2. Sync members (the job runs here, as the worker would).
            page.get_by_role("button", name="Sync now").click()
            page.wait_for_load_state("networkidle")
            run_jobs(app, "connectwise")
            dashboard()
            assert _step_done(page, "connect") and _step_done(page, "members")

            # 3. Brand the invoices.
            page.locator("#step-branding").get_by_role("link").click()
            page.get_by_role("button", name="Save branding").click()
            page.wait_for_load_state("networkidle")
            dashboard()
            assert _step_done(page, "branding")

            # 4. The first review sweep.
            page.locator("#step-sweep").get_by_role("link").click()
            page.get_by_role("button", name="Run the first sweep").click()
            page.wait_for_load_state("networkidle")
            run_jobs(app, "connectwise")
            dashboard()
            assert _step_done(page, "sweep")

            # 5. A colleague.
            page.locator("#step-colleague").get_by_role("link").click()
            form = page.locator("#add-user")
            form.locator("input[name=email]").fill(f"colleague-{uuid.uuid4().hex[:6]}{AT}fabrikam-it.example")
            form.locator("input[name=name]").fill("Carl Colleague")
            form.locator("select[name=role]").select_option("reviewer")
            form.get_by_role("button", name="Add user").click()
            page.wait_for_load_state("networkidle")
            dashboard()
            expect(page.locator("#onboarding")).to_have_count(0)  # every step done: the checklist is gone
            look("2-dashboard-set-up")

            # Billing: a trial, then Checkout, then Pro.
            page.locator("details.navmenu > summary").click()
            page.get_by_role("link", name="Billing").click()
            page.wait_for_url(base + "/settings/billing/")
            expect(page.locator("dl.billing-facts").first).to_contain_text("Trial")
            assert "14 days left" in page.inner_text("main")
            look("3-billing-trial")
            page.get_by_role("button", name="Upgrade to Pro, monthly").click()
            page.wait_for_url(base + "/settings/billing/?checkout=success")
            assert fake.delivered == [("customer.subscription.created", 200), ("checkout.session.completed", 200)]
            expect(page.get_by_role("status")).to_contain_text("Thanks: you are on Pro.")
            facts = page.locator("dl.billing-facts").first
            expect(facts).to_contain_text("Pro, billed monthly")
            expect(facts).to_contain_text("Active")
            expect(facts).to_contain_text("Renews")
            assert page.get_by_role("button", name="Manage billing").is_enabled()
            assert page.get_by_role("button", name=re.compile("Upgrade to Pro")).count() == 0
            look("4-billing-pro-1366")
            page.get_by_role("button", name="Manage billing").click()  # the portal fake sends the owner straight back
            page.wait_for_url(base + "/settings/billing/")
            assert len(fake.portals) == 1

            # The same page on a phone.
            phone_context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
            phone_context.add_cookies(page.context.cookies())
            page = phone_context.new_page()
            page.goto(base + "/settings/billing/")
            expect(page.get_by_role("button", name="Manage billing")).to_be_visible()
            button = page.get_by_role("button", name="Manage billing").bounding_box()
            assert button is not None and button["x"] >= 0 and button["x"] + button["width"] <= 390
            look("5-billing-pro-390")
        finally:
            browser.close()
    print(f"page widths: {widths}")
    assert all(w <= (390 if "390" in name else 1366) for name, w in widths.items()), widths
    [membership] = memberships(app.extensions["session_factory"], email)
    with tenant_session(membership.tenant_id, app.extensions["session_factory"]) as s:
        row = s.get(TenantBilling, membership.tenant_id)
        assert (row.plan, row.status, row.billing_interval) == ("pro", "active", "month")
        assert row.stripe_customer_id and row.stripe_subscription_id
