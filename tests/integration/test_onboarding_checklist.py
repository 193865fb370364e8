"""The dashboard's onboarding checklist: every step unticked in a new workspace, each ticking after its own action
against the simulator (connect and test, member sync, branding, a sweep, a colleague), gone when all are done; the
ConnectWise form's permission list is the list "Test connection" checks; the branding preview's sample fallback."""

from __future__ import annotations

import re

import pytest
from rq import SimpleWorker

from app.branding.model import branding_to_form, default_branding
from app.branding.views import SAMPLE_NOTE
from app.connectwise.client import _module
from app.connectwise.permissions import PERMISSIONS, checks
from app.jobs.queue import get_queue
from tests.conftest import csrf_of, sign_in
from tests.integration.invoice_helpers import add_user, connect, htmx, sim_knobs_at_defaults  # noqa: F401 (fixture)

STEPS = ("connect", "members", "branding", "sweep", "colleague")
LINKS = {"connect": 'href="/settings/connectwise/"', "members": 'href="/settings/connectwise/#members"',
         "branding": 'href="/settings/branding/"', "sweep": 'href="/review/"',
         "colleague": 'href="/settings/users/#add-user"'}


@pytest.fixture(autouse=True)
def _permissions_back_afterwards(sim):  # type: ignore[no-untyped-def]
    """The refusals set here must not reach later tests (the shared knob reset leaves ``forbidden`` alone)."""
    yield
    sim.configure(forbidden="", forbidden_writes="")


def _dashboard(client) -> str:  # type: ignore[no-untyped-def]
    response = client.get("/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _ticks(html: str) -> dict[str, bool]:
    """Each step's state as the dashboard shows it; {} when the checklist is not there."""
    return {key: done == "true" for key, done in re.findall(r'id="step-(\w+)" data-done="(true|false)"', html)}


def _step(html: str, key: str) -> str:
    return html.split(f'id="step-{key}"', 1)[1].split("</li>", 1)[0]


def _work(app, redis_conn, queue_name: str) -> None:  # type: ignore[no-untyped-def]
    queue = get_queue(redis_conn, queue_name)
    with app.app_context():
        SimpleWorker([queue], connection=redis_conn, serializer=queue.serializer).work(burst=True)


def _branding_form(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {**branding_to_form(default_branding()), "page_size": "A4", "csrf_token": csrf_of(client)}


def test_a_new_workspace_shows_every_step_unticked_with_a_link_to_its_page(client, make_tenant):
    sign_in(client, make_tenant("Fresh MSP"))
    html = _dashboard(client)
    assert 'id="onboarding"' in html and "0 of 5 done" in html
    assert _ticks(html) == dict.fromkeys(STEPS, False)
    for key, link in LINKS.items():
        assert link in _step(html, key), key
    # The first step is the one put forward, and the checklist stands in for the separate "connect" card.
    assert 'class="button primary" href="/settings/connectwise/"' in html
    assert 'id="dash-connect"' not in html


def test_each_step_ticks_after_its_action_and_the_list_goes_away_when_done(app, client, make_tenant, fresh_sim,
                                                                           redis_conn):
    sign_in(client, make_tenant("Walking MSP"))
    get_queue(redis_conn, "connectwise").empty()

    connect(client, fresh_sim)
    html = _dashboard(client)
    assert not _ticks(html)["connect"] and "Run “Test connection”" in _step(html, "connect")
    assert client.post("/settings/connectwise/test", headers=htmx(client)).status_code == 200
    assert _ticks(_dashboard(client)) == {**dict.fromkeys(STEPS, False), "connect": True}

    assert client.post("/settings/connectwise/members/sync", headers=htmx(client)).status_code == 200
    assert not _ticks(_dashboard(client))["members"]  # queued, not yet run
    _work(app, redis_conn, "connectwise")
    ticks = _ticks(_dashboard(client))
    # Synced members arrive with no access: they are not colleagues who can sign in yet.
    assert ticks["members"] and not ticks["colleague"]

    assert client.post("/settings/branding/", data=_branding_form(client)).status_code == 302
    assert _ticks(_dashboard(client))["branding"]

    get_queue(redis_conn, "connectwise").empty()
    assert client.post("/review/sweep", headers=htmx(client)).status_code == 200
    assert not _ticks(_dashboard(client))["sweep"]
    _work(app, redis_conn, "connectwise")
    html = _dashboard(client)
    assert _ticks(html) == {**dict.fromkeys(STEPS, True), "colleague": False} and "4 of 5 done" in html

    response = client.post("/settings/users/", data={"email": "colleague@walking-msp.example", "name": "Cal",
                                                     "role": "reviewer", "csrf_token": csrf_of(client)})
    assert response.status_code in (200, 302)
    html = _dashboard(client)
    assert 'id="onboarding"' not in html and not _ticks(html)


def test_a_failed_connection_test_leaves_the_step_open_and_says_why(client, make_tenant, fresh_sim):
    sign_in(client, make_tenant())
    connect(client, fresh_sim)
    fresh_sim.configure(forbidden="finance/invoices")
    client.post("/settings/connectwise/test", headers=htmx(client))
    html = _dashboard(client)
    assert not _ticks(html)["connect"] and "which permission is missing" in _step(html, "connect")


def test_a_failed_member_sync_is_not_a_tick_and_its_reason_is_shown(app, client, make_tenant, fresh_sim, redis_conn):
    sign_in(client, make_tenant())
    connect(client, fresh_sim)
    get_queue(redis_conn, "connectwise").empty()
    fresh_sim.configure(forbidden="system/members")
    client.post("/settings/connectwise/members/sync", headers=htmx(client))
    _work(app, redis_conn, "connectwise")
    html = _dashboard(client)
    assert not _ticks(html)["members"] and "The last sync failed" in _step(html, "members")


@pytest.mark.parametrize("role", ["billing_manager", "reviewer", "viewer"])
def test_only_those_who_set_the_workspace_up_see_the_checklist(app, client, make_tenant, role):
    tenant = make_tenant()
    sign_in(client, tenant, add_user(app, tenant, role))
    assert 'id="onboarding"' not in _dashboard(client)


def test_an_admin_sees_it_too(app, client, make_tenant):
    tenant = make_tenant()
    sign_in(client, tenant, add_user(app, tenant, "admin"))
    # The admin is a second person who can sign in: that step is done, the rest are not.
    assert _ticks(_dashboard(client)) == {**dict.fromkeys(STEPS, False), "colleague": True}


def test_the_permission_list_matches_what_test_connection_checks(client, make_tenant, fresh_sim):
    sign_in(client, make_tenant())
    page = client.get("/settings/connectwise/").get_data(as_text=True)
    listed = page.split('id="cw-permissions"', 1)[1].split("</details>", 1)[0]
    listed_checks = re.findall(r'data-check="([^"]+)"', listed)
    listed_permissions = re.findall(r'data-permission="([^"]+)"', listed)
    # Open before anything is connected: it is what to set up in ConnectWise first.
    assert 'id="cw-permissions" open' in page

    connect(client, fresh_sim)
    report = client.post("/settings/connectwise/test", headers=htmx(client)).get_data(as_text=True)
    tested = re.findall(r"<strong>([^<]+)</strong>", report)
    assert tested[0] == "API keys" and tested[1:] == listed_checks == [label for label, _ in checks()]
    assert listed_permissions == [p.name.replace("&", "&amp;") for p in PERMISSIONS]
    for module in ("Companies", "Finance", "Time &amp; Expense", "Procurement", "System"):
        assert f'<h3 class="cw-perm-module">{module}</h3>' in listed
    assert "Readable" in report and "Missing" not in report
    # Connected, the list folds away (still there to open).
    assert 'id="cw-permissions" open' not in client.get("/settings/connectwise/").get_data(as_text=True)


@pytest.mark.parametrize("permission", PERMISSIONS, ids=lambda p: p.name)
def test_a_refusal_names_the_permission_the_form_lists(client, make_tenant, fresh_sim, permission):
    sign_in(client, make_tenant())
    connect(client, fresh_sim)
    label, path = permission.checks[0]
    assert _module(f"{path}/count") == permission.name
    fresh_sim.configure(forbidden=path)
    report = client.post("/settings/connectwise/test", headers=htmx(client)).get_data(as_text=True)
    missing = [line for line in report.split("<li>")[1:] if "Missing" in line]
    assert len(missing) == 1 and f"<strong>{label}</strong>" in missing[0]
    assert permission.name.replace("&", "&amp;") in missing[0]


def test_the_branding_preview_is_a_sample_with_a_note_until_connected(client, make_tenant):
    sign_in(client, make_tenant("Not Yet Connected"))
    page = client.get("/settings/branding/").get_data(as_text=True)
    assert "preview shows a sample invoice" in page
    form = {**_branding_form(client), "footer_text": "Sample footer words"}
    html = client.post("/settings/branding/preview", data=form, headers=htmx(client)).get_data(as_text=True)
    assert SAMPLE_NOTE in html and "Sample footer words" in html and "Preview updated: a sample invoice" in html


def test_the_branding_preview_opens_on_the_newest_real_invoice_when_connected(client, make_tenant, fresh_sim):
    sign_in(client, make_tenant())
    connect(client, fresh_sim)
    page = client.get("/settings/branding/").get_data(as_text=True)
    options = re.findall(r'<option value="(\d+)"( selected)?', page.split('name="preview_invoice"', 1)[1])
    assert options and options[0][1] == " selected"
    html = client.post("/settings/branding/preview", data={**_branding_form(client), "preview_invoice": options[0][0]},
                       headers=htmx(client)).get_data(as_text=True)
    assert SAMPLE_NOTE not in html and "as your client will see it" in html
