"""The review pages: the overview's empty states, "Sweep now" queueing a sweep whose panel reports progress and then
the finish line, the open flags with their severity labels, and the rule settings page (saved with an audit row,
the stored snapshots re-checked without ConnectWise, 422 beside a bad field, refused to a viewer)."""

from __future__ import annotations

import re

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from app.audit.log import Actor
from app.audit.models import AuditEntry
from app.jobs.queue import get_queue
from app.review import progress
from app.review.models import WORST, Flag, ReviewInvoice, ReviewSettings, Snapshot
from app.review.rules import default_settings
from app.review.settings import set_storage
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from tests.conftest import csrf_of, sign_in
from tests.integration.invoice_helpers import add_user, connected_tenant, htmx, sim_knobs_at_defaults  # noqa: F401
from tests.integration.test_review_sweep import FAST

PICKED = {("product_not_taxable", "product_types")}


def form_of(settings: dict, **changes: str) -> dict:
    """The settings form as a browser posts it: unchecked boxes absent, lists one per line."""
    data: dict = {}
    for rule, values in settings.items():
        for key, value in values.items():
            name = f"{rule}.{key}"
            if isinstance(value, bool):
                if value:
                    data[name] = "on"
            elif isinstance(value, list):
                data[name] = value if (rule, key) in PICKED else "\n".join(value)
            else:
                data[name] = str(value)
    for name, value in changes.items():
        name = name.replace("__", ".")
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def open_flag_count(app, tenant) -> int:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        return session.execute(select(func.count()).select_from(Flag).where(Flag.cleared_at.is_(None))).scalar_one()


def full_sweep(app, tenant) -> None:  # type: ignore[no-untyped-def]
    assert run_sweep(services_of(app), str(tenant.id), kind="full", client_options=FAST).outcome == "ok"


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Review Pages Co")


def test_a_tenant_not_connected_is_sent_to_connect_connectwise(client, make_tenant):
    t = make_tenant("Unconnected IT")
    sign_in(client, t)
    html = client.get("/review/").get_data(as_text=True)
    assert "Connect ConnectWise" in html and 'href="/settings/connectwise/"' in html
    assert client.post("/review/sweep", headers=htmx(client)).status_code == 422


def test_before_any_sweep_the_page_offers_the_first_sweep_and_the_menu_names_review(client, tenant):
    response = client.get("/review/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Run the first sweep" in html and 'href="/review/"' in html


def test_with_review_storage_off_the_page_says_so_and_sweep_now_is_refused(app, client, tenant, redis_conn):
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        set_storage(session, tenant.id, False, Actor.system("test"))
    assert "Review storage is turned off" in client.get("/review/").get_data(as_text=True)
    assert client.post("/review/sweep", headers=htmx(client)).status_code == 422
    assert get_queue(redis_conn, "connectwise").count == 0


def test_sweep_now_queues_a_sweep_and_the_panel_reports_progress_then_the_finish_line(app, client, tenant, redis_conn):
    queue = get_queue(redis_conn, "connectwise")
    queue.empty()
    response = client.post("/review/sweep", headers=htmx(client))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'hx-trigger="every 1s"' in html and "waiting for a worker" in html
    [job] = queue.jobs
    assert list(job.args) == [str(tenant.id)]  # ids only, tenant first
    # What the running job reports is what the polled panel shows.
    progress.started(redis_conn, str(tenant.id))
    assert "Reading open invoices from ConnectWise" in client.get("/review/sweep/progress").get_data(as_text=True)
    progress.reporter(redis_conn, str(tenant.id))(120, 316)
    polled = client.get("/review/sweep/progress").get_data(as_text=True)
    assert "120 of 316 invoices done" in polled and 'hx-trigger="every 1s"' in polled
    with app.app_context():
        SimpleWorker([queue], connection=redis_conn, serializer=queue.serializer).work(burst=True)
    done = client.get("/review/sweep/progress").get_data(as_text=True)
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        snapshots = session.execute(select(func.count()).select_from(Snapshot)).scalar_one()
    assert snapshots > 0
    assert f"finished: {snapshots} invoices, {open_flag_count(app, tenant)} flags" in done
    assert "every 1s" not in done and "Sweep now" in done


def test_after_a_sweep_the_page_counts_open_invoices_by_worst_flag_in_coloured_severity_and_lists_flagged_ones(
        app, client, tenant):
    full_sweep(app, tenant)
    html = client.get("/review/").get_data(as_text=True)
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        flags = session.execute(select(Flag.severity, Flag.invoice_number).where(Flag.cleared_at.is_(None))).all()
        worst = dict(session.execute(select(ReviewInvoice.worst_flag, func.count()).where(ReviewInvoice.is_open)
                                     .group_by(ReviewInvoice.worst_flag)).tuples().all())
    assert flags
    # The overview's flag list became the inbox (each flag is on its invoice's review page): the summary counts open
    # invoices by their worst open flag, ERROR red, WARNING amber, INFO blue ...
    for severity in ("error", "warning", "info"):
        count = worst.get(WORST[severity], 0)
        assert f'<span class="badge sev-{severity}">{severity.upper()}</span> {count:,}</span>' in html
    assert sum(worst.get(WORST[s], 0) for s in ("error", "warning", "info")) > 0
    # ... and the Flagged tab lists the invoices with open error or warning flags, a page at a time.
    flagged = {number for severity, number in flags if severity in ("error", "warning")}
    listed = re.findall(r'class="inv-number">([^<]+)<', client.get("/review/?tab=flagged").get_data(as_text=True))
    assert len(listed) == min(len(flagged), 50) and set(listed) <= flagged


def test_saving_rule_settings_audits_the_change_and_says_how_many_flags_appeared_and_cleared(
        app, client, tenant, sim):
    full_sweep(app, tenant)
    before = open_flag_count(app, tenant)
    logged = len(sim.requests)
    data = form_of(default_settings(), hours_outlier__max_hours="1")
    response = client.post("/settings/review/", data={**data, "csrf_token": csrf_of(client)}, headers=htmx(client))
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    assert len(sim.requests) == logged, "re-checking stored snapshots never calls ConnectWise"
    appeared = open_flag_count(app, tenant) - before
    assert appeared > 0 and f"{appeared} flags appeared, 0 cleared" in html
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        [entry] = session.execute(select(AuditEntry).where(AuditEntry.action == "review.rules_changed")).scalars()
        assert (entry.before, entry.after) == ({"hours_outlier.max_hours": "12"}, {"hours_outlier.max_hours": "1"})
        assert session.get(ReviewSettings, tenant.id).rule_settings["hours_outlier"]["max_hours"] == "1"
    back = client.post("/settings/review/", data={**form_of(default_settings()), "csrf_token": csrf_of(client)},
                       headers=htmx(client))
    assert f"0 flags appeared, {appeared} cleared" in back.get_data(as_text=True)
    assert open_flag_count(app, tenant) == before


def test_a_bad_threshold_answers_422_with_the_message_beside_its_field_and_saves_nothing(app, client, tenant):
    data = form_of(default_settings(), low_margin__threshold_percent="150")
    response = client.post("/settings/review/", data={**data, "csrf_token": csrf_of(client)}, headers=htmx(client))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    field = html.index('name="low_margin.threshold_percent"')
    message = html.index('id="error-low_margin-threshold_percent"')
    assert 0 < message - field < 400 and "Enter a number from 0 to 100." in html[message:message + 200]
    assert 'value="150"' in html  # what was typed stays in the field
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        row = session.get(ReviewSettings, tenant.id)
        assert row is None or not row.rule_settings
        assert not session.execute(select(AuditEntry).where(AuditEntry.action == "review.rules_changed")).first()


def test_the_settings_page_shows_each_rule_and_the_recent_sweeps(app, client, tenant):
    full_sweep(app, tenant)
    html = client.get("/settings/review/").get_data(as_text=True)
    assert "Low profit margin" in html and 'name="keyword.keywords"' in html
    assert 'name="product_not_taxable.product_types" value="Service"' in html
    assert "Recent sweeps" in html and "<td>full</td>" in html


def test_a_viewer_sees_the_review_page_but_is_refused_rule_settings_and_sweep_now(app, client, tenant):
    viewer = add_user(app, tenant, "viewer")
    sign_in(client, tenant, viewer)
    assert client.get("/review/").status_code == 200
    assert "Sweep now" not in client.get("/review/").get_data(as_text=True)
    assert client.get("/settings/review/").status_code == 403
    data = {**form_of(default_settings()), "csrf_token": csrf_of(client)}
    assert client.post("/settings/review/", data=data).status_code == 403
    assert client.post("/review/sweep", data={"csrf_token": csrf_of(client)}).status_code == 403
