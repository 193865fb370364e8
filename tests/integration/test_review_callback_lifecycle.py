"""Review's ConnectWise callbacks follow the review switch and the connection, end to end with the simulator.

The app runs on a loopback port with ``BASE_URL`` pointing at it, so the callbacks the jobs register are the ones
the simulator calls. Registration and removal happen in RQ jobs on ``connectwise`` (run here by a burst worker,
scheduled ones first moved to the queue); the page shows where they stand; a refusal is recorded with its reason and
tried again by the sweep's fan-out or "Register again"; deleted records rescan their invoice; and only platform
support, through a grant, turns review storage off (purged, audited, callbacks removed).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from rq import SimpleWorker
from sqlalchemy import select
from werkzeug.serving import make_server

import cwsim
from app.audit.models import AuditEntry
from app.jobs.queue import get_queue
from app.review.callback_state import CallbackState, stored_keys
from app.review.models import CallbackRegistration, Flag, ReviewSettings, Snapshot, Sweep
from app.review.sweep import run_sweep
from app.services import services_of
from app.support.models import SupportGrant
from app.tenancy import tenant_session
from cwsim.callbacks import wait_for
from tests.conftest import csrf_of, sign_in
from tests.integration.invoice_helpers import add_user, rebuild_afterwards, sim_knobs_at_defaults  # noqa: F401

FAST = {"sleep": lambda s: None, "max_retries": 1}
STAFF = "sam" + chr(64) + "betterinvoice.example"


class _Dispatch:
    """A WSGI callable whose app is set once the port (and so ``BASE_URL``) is known."""

    app: Any = None

    def __call__(self, environ: dict, start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture()
def served(config, redis_conn):  # type: ignore[no-untyped-def]
    """The app on a loopback port, its BASE_URL that port, support staff configured."""
    from app import create_app

    dispatch = _Dispatch()
    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    dispatch.app = create_app(replace(config, BASE_URL=url, SUPPORT_STAFF_EMAILS=STAFF))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield dispatch.app
    server.shutdown()
    server.server_close()
    dispatch.app.extensions["engine"].dispose()


@pytest.fixture()
def queue(redis_conn):  # type: ignore[no-untyped-def]
    q = get_queue(redis_conn, "connectwise")
    q.empty()
    yield q
    q.empty()


@pytest.fixture()
def fresh(request, sim):  # type: ignore[no-untyped-def]
    rebuild_afterwards(request, sim)  # the callbacks and deletions a test makes in the simulator go afterwards
    sim.state.deliveries.clear()
    return sim


def connect_form(client, site, company: str, public: str, private: str):  # type: ignore[no-untyped-def]
    data = {"site": site, "company_id": company, "public_key": public, "private_key": private,
            "csrf_token": csrf_of(client)}
    response = client.post("/settings/connectwise/", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


@pytest.fixture()
def tenant(served, make_tenant, fresh, queue):  # type: ignore[no-untyped-def]
    """A tenant whose owner is signed in on the served app; not yet connected."""
    t = make_tenant(f"Lifecycle {uuid.uuid4().hex[:6]}")
    client = served.test_client()
    sign_in(client, t)
    return t, client


def scheduled(queue) -> list:  # type: ignore[no-untyped-def]
    return [queue.fetch_job(i) for i in queue.scheduled_job_registry.get_job_ids()]


def run_jobs(app, queue) -> None:  # type: ignore[no-untyped-def]
    """Move scheduled jobs to the queue now, then run everything queued (as the worker would, in time)."""
    registry = queue.scheduled_job_registry
    for job in scheduled(queue):
        registry.remove(job)
        queue.enqueue_job(job)
    with app.app_context():
        SimpleWorker([queue], connection=queue.connection, serializer=queue.serializer).work(burst=True)


def state(app, tenant_id) -> CallbackState | None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        row = session.get(CallbackState, tenant_id)
        if row is not None:
            session.expunge(row)
        return row


def registration(app, tenant_id) -> CallbackRegistration | None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        row = session.get(CallbackRegistration, tenant_id)
        if row is not None:
            session.expunge(row)
        return row


def callbacks_in(sim) -> list[dict]:  # type: ignore[no-untyped-def]
    return list(sim.state.data["callbacks"].iter())


def connected(served, tenant, sim, queue) -> None:  # type: ignore[no-untyped-def]
    """Connect the tenant to ``sim`` through the form and run the job that follows."""
    t, client = tenant
    connect_form(client, sim.url, sim.company_id, sim.public_key, sim.private_key)
    run_jobs(served, queue)


def api(sim) -> httpx.Client:  # type: ignore[no-untyped-def]
    return httpx.Client(base_url=sim.api_url, auth=(f"{sim.company_id}+{sim.public_key}", sim.private_key),
                        headers={"clientId": "tests"})


def audit(app, tenant_id, action: str) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        rows = session.execute(select(AuditEntry).where(AuditEntry.action == action)
                               .order_by(AuditEntry.id)).scalars().all()
        for row in rows:
            session.expunge(row)
        return list(rows)


# --- registered when review becomes active ---------------------------------------------------------------------


def test_first_connect_registers_the_callbacks_in_a_job_after_the_request(served, tenant, fresh, queue):
    t, client = tenant
    connect_form(client, fresh.url, fresh.company_id, fresh.public_key, fresh.private_key)
    assert callbacks_in(fresh) == []  # nothing in the request itself
    assert state(served, t.id).status == "pending"
    [job] = scheduled(queue)
    assert list(job.args) == [str(t.id), "sync"] and job.origin == "connectwise"
    # A few seconds later, so a form saved twice in a row costs one registration.
    when = queue.scheduled_job_registry.get_scheduled_time(job)
    assert timedelta(seconds=2) < when - datetime.now(UTC) <= timedelta(seconds=6)
    run_jobs(served, queue)
    registered = callbacks_in(fresh)
    assert sorted(c["type"] for c in registered) == ["expense", "invoice", "time"]
    base = services_of(served).config.BASE_URL
    assert all(c["url"].startswith(f"{base}/hooks/connectwise/") for c in registered)
    row = state(served, t.id)
    assert row.status == "registered" and row.types == ["invoice", "time", "expense"] and row.registered_at
    html = client.get("/settings/review/").get_data(as_text=True)
    assert "Registered for invoices, time entries, expenses since" in html and fresh.url in html


def test_saving_the_same_connection_again_queues_nothing_and_keeps_the_callbacks(served, tenant, fresh, queue):
    connected(served, tenant, fresh, queue)
    t, client = tenant
    ids = sorted(c["id"] for c in callbacks_in(fresh))
    connect_form(client, fresh.url, fresh.company_id, fresh.public_key, "")  # the stored private key kept
    assert scheduled(queue) == [] and queue.count == 0
    assert state(served, t.id).status == "registered"
    assert sorted(c["id"] for c in callbacks_in(fresh)) == ids


def test_the_keys_that_registered_them_are_stored_encrypted_and_forgotten_once_removed(served, tenant, fresh,
                                                                                       queue, owner_engine):
    from sqlalchemy import text

    connected(served, tenant, fresh, queue)
    t, _ = tenant
    with owner_engine.begin() as conn:
        conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(t.id)})
        raw = conn.execute(text("select keys_enc from review_callback_state where tenant_id = :t"),
                           {"t": t.id}).scalar_one()
    assert raw and fresh.private_key.encode() not in bytes(raw) and fresh.public_key.encode() not in bytes(raw)
    keys = stored_keys(services_of(served).keyring, state(served, t.id))
    assert keys is not None and (keys.site, keys.private_key) == (fresh.url, fresh.private_key)
    from app.review.settings import locked_row

    with tenant_session(t.id, served.extensions["session_factory"]) as session:
        locked_row(session, t.id).storage_enabled = False  # the switch alone: the fan-out does the rest
    run_jobs_via_fan_out(served, queue, t.id)
    assert callbacks_in(fresh) == [] and state(served, t.id).keys_enc is None


def run_jobs_via_fan_out(app, queue, tenant_id) -> None:  # type: ignore[no-untyped-def]
    """The periodic fan-out, then this tenant's callbacks job alone (the fan-out queues work for every tenant in
    the test database; theirs is not this test's to run)."""
    from app.review.jobs import sweep_all_tenants

    with app.app_context():
        sweep_all_tenants()
    ours = [j for j in queue.jobs if j.func_name.endswith("sync_callbacks_job") and j.args[0] == str(tenant_id)]
    assert len(ours) == 1, "the fan-out queued this tenant's callbacks job"
    for job in queue.jobs:
        if job not in ours:
            queue.remove(job)
    run_jobs(app, queue)


# --- a failure is recorded, shown and tried again ----------------------------------------------------------------


def test_a_refused_registration_is_shown_with_its_reason_and_the_sweep_fan_out_tries_again(served, tenant, fresh,
                                                                                         queue):
    t, client = tenant
    fresh.configure(forbidden="system/callbacks")
    connected(served, tenant, fresh, queue)
    row = state(served, t.id)
    assert row.status == "failed" and row.attempts == 1
    assert row.reason == ("ConnectWise refused to register callbacks: missing permission System › Callbacks (add it "
                          "to the API member's security role, then register again)")
    assert registration(served, t.id) is None and callbacks_in(fresh) == []
    html = client.get("/settings/review/").get_data(as_text=True)
    assert "Failed" in html and "missing permission System › Callbacks" in html and "Register again" in html
    run_jobs_via_fan_out(served, queue, t.id)
    assert state(served, t.id).attempts == 2  # still refused: counted, still shown
    fresh.configure(forbidden="")
    run_jobs_via_fan_out(served, queue, t.id)
    assert state(served, t.id).status == "registered" and len(callbacks_in(fresh)) == 3
    assert audit(served, t.id, "review.callbacks_registered")


def test_register_again_queues_a_fresh_registration_for_review_rules_and_refuses_a_reviewer(served, tenant, fresh,
                                                                                          queue, make_tenant):
    connected(served, tenant, fresh, queue)
    t, client = tenant
    before = {c["url"] for c in callbacks_in(fresh)}
    response = client.post("/settings/review/callbacks/register",
                           headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="review-callbacks"' in html and "Updating the callbacks" in html
    assert 'id="review-storage" hx-swap-oob="true"' in html  # the other card comes along, so both agree
    [job] = queue.jobs
    assert list(job.args) == [str(t.id), "register"]
    run_jobs(served, queue)
    after = {c["url"] for c in callbacks_in(fresh)}
    assert len(after) == 1 and after != before  # a new token: the old URL is no more
    assert audit(served, t.id, "review.callbacks_register_requested")[0].actor_type == "user"
    reviewer = served.test_client()
    sign_in(reviewer, t, add_user(served, t, "reviewer"))
    refused = reviewer.post("/settings/review/callbacks/register", data={"csrf_token": csrf_of(reviewer)})
    assert refused.status_code == 403 and queue.count == 0


def test_register_again_without_a_connection_says_so_with_422(served, tenant, queue):
    _, client = tenant
    response = client.post("/settings/review/callbacks/register",
                           headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client)})
    assert response.status_code == 422 and "Connect ConnectWise first." in response.get_data(as_text=True)
    assert queue.count == 0


# --- the connection changes ------------------------------------------------------------------------------------


def test_moving_to_another_site_removes_them_there_with_the_old_keys_then_registers_on_the_new(served, tenant, fresh,
                                                                                            queue):
    connected(served, tenant, fresh, queue)
    t, client = tenant
    other = cwsim.serve_in_thread(port=0, invoices=5, public_key="otherpub", private_key="otherpriv")
    try:
        connect_form(client, other.url, other.company_id, "otherpub", "otherpriv")
        assert len(callbacks_in(fresh)) == 3 and state(served, t.id).status == "pending"
        run_jobs(served, queue)
        assert callbacks_in(fresh) == []  # the old site accepted only its own (old) keys
        deletes = [r for r in fresh.requests if r.method == "DELETE" and "/system/callbacks/" in r.path]
        assert [r.status for r in deletes] == [204, 204, 204]
        assert sorted(c["type"] for c in callbacks_in(other)) == ["expense", "invoice", "time"]
        moved = registration(served, t.id)
        assert moved is not None and moved.site == other.url
        assert stored_keys(services_of(served).keyring, state(served, t.id)).public_key == "otherpub"
        [removed] = audit(served, t.id, "review.callbacks_removed")
        assert removed.after["site"] == fresh.url and len(removed.after["removed"]) == 3
        assert removed.after["left"] == []
    finally:
        other.stop()


def test_new_keys_on_the_same_site_remove_the_old_callbacks_and_register_again(served, tenant, fresh, queue):
    connected(served, tenant, fresh, queue)
    t, client = tenant
    old_ids = sorted(c["id"] for c in callbacks_in(fresh))
    fresh.configure(public_key="rotatedpub", private_key="rotatedpriv")  # the old keys stop working
    connect_form(client, fresh.url, fresh.company_id, "rotatedpub", "rotatedpriv")
    run_jobs(served, queue)
    now = callbacks_in(fresh)
    assert len(now) == 3 and not {c["id"] for c in now} & set(old_ids)
    assert state(served, t.id).status == "registered" and state(served, t.id).left_behind == []


def test_callbacks_the_old_site_no_longer_lets_us_remove_are_recorded_and_shown(served, tenant, fresh, queue):
    connected(served, tenant, fresh, queue)
    t, client = tenant
    other = cwsim.serve_in_thread(port=0, invoices=5, public_key="otherpub", private_key="otherpriv")
    try:
        fresh.configure(revoked=True)  # the customer revoked the old keys before moving
        connect_form(client, other.url, other.company_id, "otherpub", "otherpriv")
        run_jobs(served, queue)
        assert len(callbacks_in(fresh)) == 3 and len(callbacks_in(other)) == 3
        [left] = state(served, t.id).left_behind
        assert left["site"] == fresh.url and len(left["ids"]) == 3 and "refused the API keys" in left["reason"]
        html = client.get("/settings/review/").get_data(as_text=True)
        assert f"3 callbacks could not be removed from {fresh.url}" in html
    finally:
        other.stop()


# --- deleted records ---------------------------------------------------------------------------------------------


@pytest.fixture()
def swept(served, tenant, fresh, queue):  # type: ignore[no-untyped-def]
    connected(served, tenant, fresh, queue)
    t, _ = tenant
    assert run_sweep(services_of(served), str(t.id), client_options=FAST).outcome == "ok"
    return t


def snapshots(app, tenant_id) -> dict[int, str]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        return {s.invoice_id: s.content_hash for s in session.execute(select(Snapshot)).scalars()}


def open_flags(app, tenant_id, invoice_id: int) -> set[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        return {(f.rule, f.target_type, f.target_id) for f in session.execute(
            select(Flag).where(Flag.invoice_id == invoice_id, Flag.cleared_at.is_(None))).scalars()}


def test_a_deleted_time_entry_rescans_the_invoice_it_was_on(served, swept, fresh, queue):
    t = swept
    stored = snapshots(served, t.id)
    entry = next(e for e in fresh.state.data["timeEntries"].iter()
                 if e.get("invoice", {}).get("id") in stored
                 and ("insufficient_notes", "time_entry", e["id"]) in open_flags(served, t.id, e["invoice"]["id"]))
    invoice_id = entry["invoice"]["id"]
    started = time.monotonic()
    with api(fresh) as cw:
        assert cw.delete(f"/time/entries/{entry['id']}").status_code == 204
    [delivery] = wait_for(fresh.state, 1)
    assert (delivery.type, delivery.action, delivery.attempts) == ("time", "deleted", [202])
    assert time.monotonic() - started < 5
    [job] = queue.jobs
    assert list(job.args) == [str(t.id), "time", entry["id"]]
    run_jobs(served, queue)
    after = snapshots(served, t.id)
    assert after[invoice_id] != stored[invoice_id]
    assert {k: v for k, v in after.items() if k != invoice_id} == {k: v for k, v in stored.items() if k != invoice_id}
    assert not any(target == entry["id"] for _, _, target in open_flags(served, t.id, invoice_id))


def test_a_deleted_invoice_drops_its_snapshot_and_clears_its_flags(served, swept, fresh, queue):
    t = swept
    stored = snapshots(served, t.id)
    invoice_id = next(i for i in sorted(stored) if open_flags(served, t.id, i))
    with api(fresh) as cw:
        assert cw.delete(f"/finance/invoices/{invoice_id}").status_code == 204
    [delivery] = wait_for(fresh.state, 1)
    assert (delivery.type, delivery.action, delivery.attempts) == ("invoice", "deleted", [202])
    run_jobs(served, queue)
    after = snapshots(served, t.id)
    assert invoice_id not in after and len(after) == len(stored) - 1
    assert open_flags(served, t.id, invoice_id) == set()


def test_a_deleted_line_no_stored_invoice_holds_rescans_nothing(served, swept, fresh, queue):
    from app.review.callback_jobs import rescan_deleted_line_job

    stored = snapshots(served, swept.id)
    with served.app_context():
        answer = rescan_deleted_line_job(str(swept.id), "expense", 987654321)
    assert answer["outcome"] == "skipped" and snapshots(served, swept.id) == stored


def test_a_product_line_change_calls_no_callback_since_connectwise_has_none(served, swept, fresh, queue):
    product = next(p for p in fresh.state.data["products"].iter() if p.get("invoice"))
    with api(fresh) as cw:
        assert cw.patch(f"/procurement/products/{product['id']}",
                        json=[{"op": "replace", "path": "description", "value": "Edited"}]).status_code == 200
    time.sleep(0.3)
    assert fresh.state.deliveries == [] and queue.count == 0


# --- the storage switch: platform support only -------------------------------------------------------------------


def support_client(app, tenant_id):  # type: ignore[no-untyped-def]
    """Staff inside the tenant through an active grant (as opening an approved grant leaves the session)."""
    grant_id = uuid.uuid4()
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        now = datetime.now(UTC)
        session.add(SupportGrant(id=grant_id, tenant_id=tenant_id, staff_email=STAFF, minutes=30, status="active",
                                 reason="Customer asked us to turn review storage off", starts_at=now,
                                 decided_at=now, expires_at=now + timedelta(minutes=30)))
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = f"support:{tenant_id}:{grant_id}"
        sess["staff_email"] = STAFF
        sess["_fresh"] = True
    return client


def test_support_turns_storage_off_which_purges_audits_and_removes_the_callbacks(served, swept, fresh, queue):
    t = swept
    assert snapshots(served, t.id) and len(callbacks_in(fresh)) == 3
    staff = support_client(served, t.id)
    page = staff.get("/settings/review/").get_data(as_text=True)
    assert "Turn review storage off" in page and "Contact support" not in page
    response = staff.post("/settings/review/storage", data={"storage": "off"},
                          headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(staff)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Review storage is off: purged" in html
    assert 'id="review-callbacks" aria-live="polite" hx-swap-oob="true"' in html
    with tenant_session(t.id, served.extensions["session_factory"]) as session:
        assert session.get(ReviewSettings, t.id).storage_enabled is False
        for model in (Snapshot, Flag, Sweep):
            assert session.execute(select(model)).first() is None
    [changed] = audit(served, t.id, "review.storage_changed")
    assert (changed.actor_type, changed.actor_label) == ("support", STAFF)
    assert changed.after["storage_enabled"] is False and changed.after["purged"]["snapshots"] > 0
    assert changed.source_ip is not None
    assert state(served, t.id).status == "pending"
    [job] = queue.jobs
    assert list(job.args) == [str(t.id), "sync"]
    run_jobs(served, queue)
    assert callbacks_in(fresh) == [] and registration(served, t.id) is None
    row = state(served, t.id)
    assert row.status == "off" and "storage is turned off" in (row.reason or "")
    # Back on: the callbacks come back.
    staff.post("/settings/review/storage", data={"storage": "on", "csrf_token": csrf_of(staff)})
    run_jobs(served, queue)
    assert state(served, t.id).status == "registered" and len(callbacks_in(fresh)) == 3


def test_owners_and_admins_cannot_switch_storage_and_are_told_to_contact_support(served, tenant, fresh, queue):
    connected(served, tenant, fresh, queue)
    t, owner = tenant
    admin = served.test_client()
    sign_in(admin, t, add_user(served, t, "admin"))
    for client in (owner, admin):
        page = client.get("/settings/review/").get_data(as_text=True)
        assert "Contact support to turn this off" in page and "Trust &amp; Security" in page
        assert 'name="storage"' not in page
        refused = client.post("/settings/review/storage", data={"storage": "off", "csrf_token": csrf_of(client)})
        assert refused.status_code == 403
    with tenant_session(t.id, served.extensions["session_factory"]) as session:
        assert session.get(ReviewSettings, t.id) is None or session.get(ReviewSettings, t.id).storage_enabled
    assert len(callbacks_in(fresh)) == 3 and queue.count == 0
    assert len(audit(served, t.id, "auth.forbidden")) == 2


def test_a_storage_value_other_than_on_or_off_is_a_422(served, tenant, queue):
    t, _ = tenant
    staff = support_client(served, t.id)
    response = staff.post("/settings/review/storage", data={"storage": "maybe"},
                          headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(staff)})
    assert response.status_code == 422 and "Choose on or off." in response.get_data(as_text=True)
    assert queue.count == 0


def test_a_time_entry_callback_url_names_no_tenant(served, tenant, fresh, queue):
    connected(served, tenant, fresh, queue)
    t, _ = tenant
    for callback in callbacks_in(fresh):
        assert str(t.id) not in callback["url"] and urlsplit(callback["url"]).query == "recordId="


def test_the_card_polls_while_a_job_works_and_stops_once_registered(served, tenant, fresh, queue):
    t, client = tenant
    connect_form(client, fresh.url, fresh.company_id, fresh.public_key, fresh.private_key)
    working = client.get("/settings/review/callbacks").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in working and "Updating the callbacks" in working
    run_jobs(served, queue)
    done = client.get("/settings/review/callbacks").get_data(as_text=True)
    assert "every 2s" not in done and "Registered for" in done


def test_the_storage_cli_removes_the_callbacks_off_and_queues_their_registration_on(served, tenant, fresh, queue):
    connected(served, tenant, fresh, queue)
    t, _ = tenant
    runner = served.test_cli_runner()
    off = runner.invoke(args=["review", "storage", str(t.id), "off"])
    assert off.exit_code == 0 and "callbacks removed: 3" in off.output, off.output
    assert callbacks_in(fresh) == [] and state(served, t.id).status == "off"
    on = runner.invoke(args=["review", "storage", str(t.id), "on"])
    assert on.exit_code == 0 and "queued to be registered" in on.output, on.output
    run_jobs(served, queue)
    assert state(served, t.id).status == "registered" and len(callbacks_in(fresh)) == 3
