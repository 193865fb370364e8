"""ConnectWise callbacks end to end: registration through the simulator, signed deliveries from the simulator to
the app served on a loopback port, verification (signature, key_url host, MessageId, token, body), and the rescan
of the invoice a callback is about (its snapshot and flags follow), queued on `connectwise` within seconds."""

from __future__ import annotations

import json
import threading
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from rq import SimpleWorker
from sqlalchemy import select
from werkzeug.serving import make_server

from app.audit.log import Actor
from app.jobs.queue import get_queue
from app.review.callbacks import disable_callbacks, enable_callbacks, registration
from app.review.hooks import signature_of
from app.review.models import CallbackRegistration, Flag, Snapshot
from app.review.settings import set_storage
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from cwsim.callbacks import key_url, wait_for
from tests.integration.invoice_helpers import connected_tenant, rebuild_afterwards, sim_knobs_at_defaults  # noqa: F401

FAST = {"sleep": lambda s: None, "max_retries": 1}
ACTOR = Actor.system("tests")


@pytest.fixture()
def live(app):  # type: ignore[no-untyped-def]
    """The app on a loopback port, so the simulator can deliver to it over HTTP."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def queue(redis_conn):  # type: ignore[no-untyped-def]
    q = get_queue(redis_conn, "connectwise")
    q.empty()
    yield q
    q.empty()


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn, request):  # type: ignore[no-untyped-def]
    rebuild_afterwards(request, sim)  # drops the callbacks and edits this test made in the simulator
    sim.state.deliveries.clear()
    return connected_tenant(client, make_tenant, sim, name="Callback Co")


def token_of(sim) -> str:  # type: ignore[no-untyped-def]
    """The token in the URL the app registered (the app keeps only its hash)."""
    urls = {c["url"] for c in sim.state.data["callbacks"].iter()}
    [url] = urls
    return urlsplit(url).path.rsplit("/", 1)[-1]


def payload(sim, **changes) -> dict:  # type: ignore[no-untyped-def]
    body = {"MessageId": str(uuid.uuid4()), "FromUrl": urlsplit(sim.url).netloc, "CompanyId": sim.company_id,
            "MemberId": "someone", "Action": "updated", "Type": "invoice", "ID": 3, "Entity": "{}",
            "Metadata": {"key_url": key_url(sim.state, sim.url)}, "CallbackObjectRecId": 1}
    body.update(changes)
    return body


def post(client, token: str, body: bytes, signature: str | None):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["x-content-signature"] = signature
    return client.post(f"/hooks/connectwise/{token}?recordId=3", data=body, headers=headers)


def signed(sim, body: dict) -> tuple[bytes, str]:  # type: ignore[no-untyped-def]
    raw = json.dumps(body).encode()
    return raw, signature_of(sim.state.callback_signing_key, raw)


def snapshot_state(app, tenant) -> dict:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        snaps = {s.invoice_id: s.content_hash for s in session.execute(select(Snapshot)).scalars()}
        flags = {(f.invoice_id, f.rule, f.target_id, f.cleared_at) for f in session.execute(select(Flag)).scalars()}
    return {"snapshots": snaps, "flags": flags}


def a_time_entry_to_break(app, tenant, sim) -> dict:  # type: ignore[no-untyped-def]
    """A billable time entry with long notes, on an open (non credit memo) invoice that has a snapshot, and no
    insufficient-notes flag."""
    state = snapshot_state(app, tenant)
    flagged = {target for _, rule, target, cleared in state["flags"] if rule == "insufficient_notes" and cleared is None}
    invoices = {i["id"]: i for i in sim.state.data["invoices"].iter()}
    return next(t for t in sim.state.data["timeEntries"].iter()
                if t.get("invoice", {}).get("id") in state["snapshots"] and t["id"] not in flagged
                and invoices[t["invoice"]["id"]].get("type") != "CreditMemo" and t.get("billableOption") == "Billable"
                and len(t.get("notes", "")) >= 40)


def run_worker(app, queue) -> None:  # type: ignore[no-untyped-def]
    with app.app_context():
        SimpleWorker([queue], connection=queue.connection, serializer=queue.serializer).work(burst=True)


def test_registration_makes_three_owner_callbacks_in_connectwise_and_off_removes_them(app, tenant, sim, live):
    services = services_of(app)
    ids = enable_callbacks(services, str(tenant.id), live, ACTOR, client_options=FAST)
    registered = {c["id"]: c for c in sim.state.data["callbacks"].iter()}
    assert sorted(ids) == sorted(registered)
    # API-NOTES §9: Invoice, Time and Expense have Owner-level callbacks; product lines (ProductItem) have none.
    assert sorted(c["type"] for c in registered.values()) == ["expense", "invoice", "time"]
    assert {(c["level"], c["objectId"]) for c in registered.values()} == {("owner", 1)}
    token = token_of(sim)
    assert all(c["url"] == f"{live}/hooks/connectwise/{token}?recordId=" for c in registered.values())
    row = registration(services, str(tenant.id))
    assert row is not None and sorted(row.callback_ids) == sorted(ids)
    assert token.encode() not in row.token_hash and str(tenant.id) not in token
    done = disable_callbacks(services, str(tenant.id), ACTOR, client_options=FAST)
    assert sorted(done.removed) == sorted(ids) and done.left == []
    assert list(sim.state.data["callbacks"].iter()) == []
    assert registration(services, str(tenant.id)) is None
    deletes = [r for r in sim.requests if r.method == "DELETE" and "/system/callbacks/" in r.path]
    assert len(deletes) == 3


def test_turning_review_storage_off_from_the_cli_removes_the_callbacks(app, tenant, sim, live):
    enable_callbacks(services_of(app), str(tenant.id), live, ACTOR, client_options=FAST)
    result = app.test_cli_runner().invoke(args=["review", "storage", str(tenant.id), "off"])
    assert result.exit_code == 0, result.output
    assert "callbacks removed: 3" in result.output
    assert list(sim.state.data["callbacks"].iter()) == []
    assert registration(services_of(app), str(tenant.id)) is None


def test_the_callbacks_cli_turns_them_on_and_off(app, tenant, sim):
    runner = app.test_cli_runner()
    on = runner.invoke(args=["review", "callbacks", str(tenant.id), "on"])
    assert on.exit_code == 0 and on.output.startswith("callbacks on: "), on.output
    assert len(list(sim.state.data["callbacks"].iter())) == 3
    off = runner.invoke(args=["review", "callbacks", str(tenant.id), "off"])
    assert off.exit_code == 0 and "callbacks removed: 3" in off.output, off.output
    assert list(sim.state.data["callbacks"].iter()) == []


def test_a_simulator_signed_callback_after_a_patch_rescans_its_invoice(app, tenant, sim, live, queue):
    services = services_of(app)
    assert run_sweep(services, str(tenant.id), client_options=FAST).outcome == "ok"
    enable_callbacks(services, str(tenant.id), live, ACTOR, client_options=FAST)
    entry = a_time_entry_to_break(app, tenant, sim)
    invoice_id = entry["invoice"]["id"]
    before = snapshot_state(app, tenant)
    started = time.monotonic()
    patched = api_patch_notes(sim, entry["id"], "Fixed it")
    assert patched.status_code == 200
    [delivery] = wait_for(sim.state, 1)
    queued_after = time.monotonic() - started
    assert delivery.attempts == [202] and delivery.type == "time"
    assert queued_after < 5, f"the rescan was queued {queued_after:.1f} s after the change"
    [job] = queue.jobs
    assert list(job.args) == [str(tenant.id), invoice_id]
    run_worker(app, queue)
    after = snapshot_state(app, tenant)
    assert after["snapshots"][invoice_id] != before["snapshots"][invoice_id]
    assert {k: v for k, v in after["snapshots"].items() if k != invoice_id} == {
        k: v for k, v in before["snapshots"].items() if k != invoice_id}
    assert (invoice_id, "insufficient_notes", entry["id"], None) in after["flags"]
    # The signing key was fetched once and then cached.
    again = api_patch_notes(sim, entry["id"], "Edited")
    assert again.status_code == 200
    wait_for(sim.state, 2)
    assert len([r for r in sim.requests if "callbackkey" in r.path]) == 1


def api_patch_notes(sim, entry_id: int, notes: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=sim.api_url, auth=(f"{sim.company_id}+{sim.public_key}", sim.private_key),
                      headers={"clientId": "tests"}) as api:
        return api.patch(f"/time/entries/{entry_id}", json=[{"op": "replace", "path": "notes", "value": notes}])


@pytest.fixture()
def armed(app, tenant, sim, live, queue):  # type: ignore[no-untyped-def]
    """A swept tenant with callbacks registered; returns (token, state before) for refusal tests."""
    services = services_of(app)
    assert run_sweep(services, str(tenant.id), client_options=FAST).outcome == "ok"
    enable_callbacks(services, str(tenant.id), live, ACTOR, client_options=FAST)
    return token_of(sim), snapshot_state(app, tenant)


def assert_nothing_changed(app, tenant, queue, before) -> None:  # type: ignore[no-untyped-def]
    assert queue.count == 0
    run_worker(app, queue)
    assert snapshot_state(app, tenant) == before


def test_a_valid_callback_is_accepted_and_queues_its_invoice(app, client, tenant, sim, armed, queue):
    token, _ = armed
    raw, sig = signed(sim, payload(sim))
    response = post(client, token, raw, sig)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert [list(j.args) for j in queue.jobs] == [[str(tenant.id), 3]]


def test_a_forged_signature_is_refused_and_changes_nothing(app, client, tenant, sim, armed, queue):
    token, before = armed
    raw, _ = signed(sim, payload(sim))
    forged = signature_of("not-the-key", raw)
    assert post(client, token, raw, forged).status_code == 401
    assert post(client, token, raw, None).status_code == 401
    tampered = raw.replace(b'"ID": 3', b'"ID": 4')
    assert post(client, token, tampered, signature_of(sim.state.callback_signing_key, raw)).status_code == 401
    assert_nothing_changed(app, tenant, queue, before)


def test_a_key_url_on_another_host_is_refused_without_fetching_it(app, client, tenant, sim, armed, queue):
    token, before = armed
    foreign = [f"http://127.0.0.2:{urlsplit(sim.url).port}/v2025_1/system/callbackkey/index.rails?id=x",
               "https://evil.example/v2025_1/system/callbackkey/index.rails",
               sim.url.replace("http://", "http://user@") + "/v2025_1/system/callbackkey/index.rails"]
    for url in foreign:
        raw, sig = signed(sim, payload(sim, Metadata={"key_url": url}))
        assert post(client, token, raw, sig).status_code == 403, url
    assert [r for r in sim.requests if "callbackkey" in r.path] == []
    assert_nothing_changed(app, tenant, queue, before)


def test_a_replayed_message_id_is_refused(app, client, tenant, sim, armed, queue):
    token, _ = armed
    raw, sig = signed(sim, payload(sim))
    assert post(client, token, raw, sig).status_code == 202
    queue.empty()
    assert post(client, token, raw, sig).status_code == 409
    assert queue.count == 0


def test_an_unknown_token_and_a_malformed_body_are_refused(app, client, tenant, sim, armed, queue):
    token, before = armed
    raw, sig = signed(sim, payload(sim))
    assert post(client, "x" * 43, raw, sig).status_code == 404
    assert post(client, "short", raw, sig).status_code == 404
    for bad in (b"{not json", b"[]", b'"text"', json.dumps({"MessageId": "m"}).encode(), b"\xff\xfe"):
        response = post(client, token, bad, signature_of(sim.state.callback_signing_key, bad))
        assert response.status_code == 400, bad
        assert response.is_json
    assert_nothing_changed(app, tenant, queue, before)


def test_another_companys_callback_and_a_tenant_with_storage_off_are_refused(app, client, tenant, sim, armed, queue):
    token, before = armed
    raw, sig = signed(sim, payload(sim, CompanyId="othermsp"))
    assert post(client, token, raw, sig).status_code == 403
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        set_storage(session, tenant.id, False, ACTOR)
        assert session.get(CallbackRegistration, tenant.id) is not None  # storage off alone: token still known
    raw, sig = signed(sim, payload(sim))
    assert post(client, token, raw, sig).status_code == 404
    assert queue.count == 0


def test_a_time_entry_callback_rescans_the_invoice_it_is_on(app, client, tenant, sim, armed, queue):
    token, _ = armed
    entity = json.dumps({"id": 77, "invoice": {"id": 5}})
    raw, sig = signed(sim, payload(sim, Type="time", ID=77, Entity=entity))
    assert post(client, token, raw, sig).status_code == 202
    raw, sig = signed(sim, payload(sim, Type="time", ID=78, Entity=json.dumps({"id": 78})))
    assert post(client, token, raw, sig).status_code == 200  # not on an invoice: nothing to rescan
    assert [list(j.args) for j in queue.jobs] == [[str(tenant.id), 5]]


def test_callbacks_are_rate_limited_per_token(app, client, tenant, sim, armed, monkeypatch):
    token, _ = armed
    codes = []
    for _ in range(305):
        codes.append(post(client, token, b"{}", "x").status_code)
        if codes[-1] == 429:
            break
    assert codes[-1] == 429 and set(codes[:-1]) == {400}


def test_moving_the_connection_to_another_site_removes_the_callbacks_first(app, client, tenant, sim, live, queue):
    import cwsim
    from app.review.callback_jobs import sync_callbacks
    from tests.integration.invoice_helpers import connect

    enable_callbacks(services_of(app), str(tenant.id), live, ACTOR, client_options=FAST)
    other = cwsim.serve_in_thread(port=0, invoices=5)
    try:
        connect(client, other)
        assert len(list(sim.state.data["callbacks"].iter())) == 3  # the request only queues the move (a job)
        with app.app_context():
            sync_callbacks(services_of(app), str(tenant.id), client_options=FAST)
        assert len(list(other.state.data["callbacks"].iter())) == 3
    finally:
        other.stop()
    assert list(sim.state.data["callbacks"].iter()) == []
    moved = registration(services_of(app), str(tenant.id))
    assert moved is not None and moved.site == other.url


def test_saving_the_same_site_again_keeps_the_callbacks(app, client, tenant, sim, live):
    from tests.integration.invoice_helpers import connect

    ids = enable_callbacks(services_of(app), str(tenant.id), live, ACTOR, client_options=FAST)
    connect(client, sim)
    assert sorted(c["id"] for c in sim.state.data["callbacks"].iter()) == sorted(ids)
