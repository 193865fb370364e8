"""In Chromium: the rule settings page swaps in the tenant's work types after it renders (htmx, no console error),
keeps the entries the field held, and a ticked work type saves; with ConnectWise down the field says why."""

from __future__ import annotations

from app.audit.log import Actor
from app.review import rule_settings
from app.review.models import ReviewSettings
from app.review.rules import default_settings
from app.services import services_of
from app.tenancy import tenant_session
from tests.browser.test_invoices_browser import browser, served, sim  # noqa: F401 (fixtures)
from tests.browser.test_review_browser import SCREENS, _page
from tests.integration.invoice_helpers import connected_tenant

PICKER = "#picker-flagged_work_type-work_types"


def test_the_work_type_picker_loads_after_the_page_and_a_ticked_name_saves(
        app, served, browser, client, make_tenant, sim, redis_conn):  # noqa: F811
    tenant = connected_tenant(client, make_tenant, sim, "Picker Browser IT")
    services, settings = services_of(app), default_settings()
    settings["flagged_work_type"]["work_types"] = ["Retired Long Ago"]  # saved once, since gone from ConnectWise
    with tenant_session(tenant.id, services.session_factory) as session:
        rule_settings.save(session, services.keyring, tenant.id, settings, Actor.system("test"))
    page, problems = _page(browser, served, client, SCREENS["desktop"])
    page.goto(served + "/settings/review/")
    page.wait_for_selector(f"fieldset{PICKER}")  # the typed placeholder was swapped for the names
    # The entries the field held went along with the load: the saved name is still ticked, marked as gone.
    assert page.locator(f'{PICKER} input[value="Retired Long Ago"]').is_checked()
    assert "(not in ConnectWise)" in page.inner_text(PICKER)
    box = page.locator(f'{PICKER} input[value="Onsite Support"]')
    assert not box.is_checked()
    box.check()
    page.get_by_role("button", name="Save rules").click()
    page.wait_for_selector("text=Rule settings saved.")
    page.wait_for_selector(f"fieldset{PICKER}")
    assert page.locator(f'{PICKER} input[value="Onsite Support"]').is_checked()
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        saved = session.get(ReviewSettings, tenant.id).rule_settings
    assert saved["flagged_work_type"]["work_types"] == ["Onsite Support", "Retired Long Ago"]
    assert problems == []


def test_with_connectwise_down_the_picker_keeps_typed_entries_and_says_why(
        app, served, browser, client, make_tenant, sim, redis_conn):  # noqa: F811
    connected_tenant(client, make_tenant, sim, "Picker Down IT")
    sim.configure(error_rate=1.0)
    try:
        page, problems = _page(browser, served, client, SCREENS["phone"])
        page.goto(served + "/settings/review/")
        page.wait_for_selector(f"{PICKER} >> text=could not load names from ConnectWise")
        assert page.locator(f'{PICKER} textarea[name="flagged_work_type.work_types"]').is_visible()
    finally:
        sim.configure(error_rate=0.0)
    assert problems == []
