"""The rule settings page's watch lists: work types picked from the tenant's own ConnectWise names (loaded by htmx
after the page, through the tenant's client and its cache), typed entries with the reason when ConnectWise cannot
be asked, a name the list does not hold refused with a 422 beside the field, product classes from ConnectWise's
fixed list, and keywords that stay typed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.log import Actor
from app.audit.models import AuditEntry
from app.review import rule_settings
from app.review.models import Flag, ReviewSettings
from app.review.rules import default_settings
from app.services import services_of
from app.tenancy import tenant_session
from tests.conftest import csrf_of, sign_in
from tests.integration.invoice_helpers import (  # noqa: F401 - sim_knobs_at_defaults is an autouse fixture
    add_user,
    connected_tenant,
    htmx,
    rebuild_afterwards,
    sim_knobs_at_defaults,
)
from tests.integration.test_review_pages import form_of, full_sweep

FIELD = "flagged_work_type.work_types"
NAMES_URL = "/settings/review/names/flagged_work_type/work_types"


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Pickers Co")


def work_types(sim) -> list[dict]:  # type: ignore[no-untyped-def]
    return list(sim.state.data["workTypes"].iter())


def names_requests(sim) -> int:  # type: ignore[no-untyped-def]
    return len(sim.state.requests("/time/workTypes"))


def post_rules(client, **changes):  # type: ignore[no-untyped-def]
    """Post the shipped settings with ``changes`` (``rule__setting=value``; a list posts checkbox values)."""
    data = {**form_of(default_settings(), **changes), "csrf_token": csrf_of(client)}
    return client.post("/settings/review/", data=data, headers=htmx(client))


def saved_rules(app, tenant) -> dict:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        row = session.get(ReviewSettings, tenant.id)
        return dict(row.rule_settings) if row is not None and row.rule_settings else {}


def audited_rule_changes(app, tenant) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        return list(session.execute(select(AuditEntry).where(AuditEntry.action == "review.rules_changed"))
                    .scalars())


def test_the_page_renders_without_asking_connectwise_and_htmx_loads_the_work_types_afterwards(client, tenant, sim):
    before = len(sim.requests)
    response = client.get("/settings/review/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert len(sim.requests) == before, "the page itself never waits for ConnectWise"
    start = html.index('id="picker-flagged_work_type-work_types"')
    placeholder = html[start:html.index("</div>", start)]
    assert f'hx-get="{NAMES_URL}"' in placeholder and 'hx-trigger="load"' in placeholder
    assert 'hx-include="find textarea"' in placeholder and 'hx-target="this"' in placeholder
    # Until the names arrive (or without JavaScript) the field takes typed entries, so a save loses nothing.
    assert f'<textarea name="{FIELD}"' in placeholder
    # ConnectWise's product classes are a fixed list: picked at once, nothing to load.
    for product_class in ("Agreement", "Bundle", "Inventory", "NonInventory", "Service"):
        assert f'name="product_not_taxable.product_types" value="{product_class}"' in html


def test_the_picker_lists_the_tenants_work_types_ticks_the_chosen_and_serves_a_reload_from_the_cache(
        client, tenant, sim):
    before = names_requests(sim)
    response = client.get(NAMES_URL, query_string={FIELD: "remote support\nBench Wizardry"}, headers=htmx(client))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert names_requests(sim) == before + 1
    assert 'hx-get' not in html and "<textarea" not in html
    listed = work_types(sim)
    assert len(listed) >= 5
    for work_type in listed:
        assert f'name="{FIELD}" value="{work_type["name"]}"' in html
    assert 'value="Remote Support" checked>' in html  # chosen in another case: ConnectWise ignores case
    assert 'value="Onsite Support" >' in html
    retired = html.index('value="Legacy Bench Repair"')
    assert "(inactive)" in html[retired:retired + 200]
    # A chosen name the list does not hold stays chosen, and says so, so it can be unticked.
    wizard = html.index('value="Bench Wizardry" checked>')
    assert "(not in ConnectWise)" in html[wizard:wizard + 200]
    again = client.get(NAMES_URL, headers=htmx(client))
    assert again.status_code == 200 and names_requests(sim) == before + 1, "a reload within the TTL is cached"


@pytest.mark.parametrize(("knobs", "reason"), [
    ({"error_rate": 1.0}, "ConnectWise answered 500"),
    ({"revoked": True}, "ConnectWise refused the API keys"),
])
def test_when_connectwise_cannot_be_asked_the_field_takes_typed_entries_and_says_why(client, tenant, sim, knobs,
                                                                                      reason):
    sim.configure(**knobs)
    response = client.get(NAMES_URL, query_string={FIELD: "Remote Support"}, headers=htmx(client))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"could not load names from ConnectWise: {reason}" in html
    assert f'<textarea name="{FIELD}" rows="3">Remote Support</textarea>' in html
    assert "hx-get" not in html, "a failed load is not retried in a loop"
    assert client.get("/settings/review/").status_code == 200


def test_a_work_type_picked_from_the_list_is_saved_in_connectwise_spelling_and_the_rule_then_flags_it(
        app, client, tenant, sim):
    full_sweep(app, tenant)
    response = post_rules(client, flagged_work_type__enabled="on", flagged_work_type__work_types=["remote support"])
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    assert saved_rules(app, tenant)["flagged_work_type"]["work_types"] == ["Remote Support"]
    [entry] = audited_rule_changes(app, tenant)
    assert entry.after["flagged_work_type.work_types"] == ["Remote Support"]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        flagged = session.execute(select(Flag).where(Flag.rule == "flagged_work_type",
                                                     Flag.cleared_at.is_(None))).scalars().all()
    assert flagged, "the seed bills Remote Support time on open invoices"
    assert f"{len(flagged)} flags appeared" in html


def test_a_work_type_not_in_the_tenants_connectwise_is_refused_with_422_beside_the_field(app, client, tenant):
    response = post_rules(client, flagged_work_type__work_types="Remote Support\n<b>Bench</b> Wizardry")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    field = html.index('id="picker-flagged_work_type-work_types"')
    message = html.index('id="error-flagged_work_type-work_types"')
    assert 0 < message - field < 1200
    error = html[message:message + 300]
    assert "Not a work type in your ConnectWise" in error and "&lt;b&gt;Bench&lt;/b&gt; Wizardry" in error
    assert "<b>Bench" not in html
    assert "Remote Support" not in error  # the known one is not blamed
    # What was chosen stays in the field, for the picker to load with.
    assert "Remote Support\n&lt;b&gt;Bench&lt;/b&gt; Wizardry</textarea>" in html
    assert saved_rules(app, tenant) == {} and audited_rule_changes(app, tenant) == []


def test_a_product_class_outside_connectwises_fixed_list_is_refused_with_422_beside_the_field(app, client, tenant,
                                                                                              sim):
    before = len(sim.requests)
    response = post_rules(client, product_not_taxable__product_types=["Service", "Hardware"])
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    message = html.index('id="error-product_not_taxable-product_types"')
    assert "Not a ConnectWise product class: \u201cHardware\u201d" in html[message:message + 300]
    assert saved_rules(app, tenant) == {}
    assert len(sim.requests) == before, "a fixed list asks ConnectWise nothing"
    ok = post_rules(client, product_not_taxable__product_types=["service", "Inventory"])
    assert ok.status_code == 200
    assert saved_rules(app, tenant)["product_not_taxable"]["product_types"] == ["Service", "Inventory"]


def test_while_connectwise_is_down_typed_work_types_are_accepted_as_the_page_offered(app, client, tenant, sim):
    sim.configure(error_rate=1.0)
    response = post_rules(client, flagged_work_type__work_types="Onsite Support\nSomething New")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert saved_rules(app, tenant)["flagged_work_type"]["work_types"] == ["Onsite Support", "Something New"]


def test_a_saved_work_type_connectwise_no_longer_has_does_not_block_an_unrelated_save(app, client, tenant, sim):
    services = services_of(app)
    settings = default_settings()
    settings["flagged_work_type"]["work_types"] = ["Retired Long Ago"]
    with tenant_session(tenant.id, services.session_factory) as session:
        rule_settings.save(session, services.keyring, tenant.id, settings, Actor.system("test"))
    before = names_requests(sim)
    response = post_rules(client, flagged_work_type__work_types="Retired Long Ago", hours_outlier__max_hours="10")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert names_requests(sim) == before, "nothing added to the list: nothing to check, ConnectWise not asked"
    saved = saved_rules(app, tenant)
    assert saved["hours_outlier"]["max_hours"] == "10"
    assert saved["flagged_work_type"]["work_types"] == ["Retired Long Ago"]
    picker = client.get(NAMES_URL, query_string={FIELD: "Retired Long Ago"}, headers=htmx(client))
    html = picker.get_data(as_text=True)
    kept = html.index('value="Retired Long Ago" checked>')
    assert "(not in ConnectWise)" in html[kept:kept + 200]


def test_keywords_stay_typed_and_take_any_words_without_asking_connectwise(app, client, tenant, sim):
    before = len(sim.requests)
    page = client.get("/settings/review/").get_data(as_text=True)
    assert '<textarea name="keyword.keywords"' in page
    assert "/settings/review/names/keyword" not in page
    response = post_rules(client, keyword__enabled="on", keyword__keywords="TODO\ninternal only\nTODO")
    assert response.status_code == 200
    assert saved_rules(app, tenant)["keyword"]["keywords"] == ["TODO", "internal only"]
    assert len(sim.requests) == before
    assert client.get("/settings/review/names/keyword/keywords", headers=htmx(client)).status_code == 404


def test_work_type_names_from_connectwise_are_escaped(client, tenant, sim, request):
    rebuild_afterwards(request, sim)
    sim.state.data["workTypes"].set_fields(work_types(sim)[0]["id"], {"name": '<img src=x onerror="alert(1)">'})
    html = client.get(NAMES_URL, headers=htmx(client)).get_data(as_text=True)
    assert "<img" not in html and "&lt;img src=x onerror=" in html


def test_a_viewer_is_refused_the_names(app, client, tenant, sim):
    viewer = add_user(app, tenant, "viewer")
    sign_in(client, tenant, viewer)
    before = names_requests(sim)
    assert client.get(NAMES_URL, headers=htmx(client)).status_code == 403
    assert names_requests(sim) == before
