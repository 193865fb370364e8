"""The full review sweep against the simulator: one encrypted snapshot per open invoice, nothing rewritten when
nothing changed, flags that keep their identity and "Mark as OK" across sweeps, a failed invoice recorded while
the rest go on, ConnectWise faults that leave the previous state intact, review storage off purging everything,
and the `review` CLI."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from sqlalchemy import select, text

import app.models  # noqa: F401 - every tenant table, for the dump
from app.audit.log import Actor
from app.audit.models import AuditEntry
from app.connectwise.client import Client, Credentials
from app.db import Base
from app.review.flags import mark_ok, open_flags
from app.review.jobs import sweep_all_tenants, sweep_job_id
from app.review.models import Flag, Snapshot, Sweep
from app.review.rules import Finding
from app.review.settings import set_storage
from app.review.snapshots import payloads_of
from app.review.sweep import run_sweep
from app.security.crypto import DecryptionError, FieldRef
from app.services import services_of
from app.tenancy import tenant_session
from tests.integration.invoice_helpers import connected_tenant, rebuild_afterwards, sim_knobs_at_defaults  # noqa: F401

MARK = "REVIEWME"
FAST = {"sleep": lambda s: None, "max_retries": 1}


def marked_products(payloads, settings=None):  # type: ignore[no-untyped-def]
    """A stand-in rule: a warning on every product line whose description carries MARK."""
    return [Finding("marked_product", "warning", "product", p["id"], f"Product {p['id']} is marked")
            for p in payloads.collections_json().get("procurement/products") or []
            if MARK in str(p.get("description", ""))]


def sweep(app, tenant, evaluate=marked_products, **options):  # type: ignore[no-untyped-def]
    return run_sweep(services_of(app), str(tenant.id), evaluate=evaluate, client_options={**FAST, **options})


def open_invoice_ids(sim) -> set[int]:  # type: ignore[no-untyped-def]
    data = sim.state.data
    open_statuses = {s["id"] for s in data["billingStatuses"].iter() if not s["closedFlag"] and not s["sentFlag"]}
    return {i["id"] for i in data["invoices"].iter() if i["status"]["id"] in open_statuses}


def cw(sim) -> Client:  # type: ignore[no-untyped-def]
    return Client(Credentials(sim.url, sim.company_id, sim.public_key, sim.private_key), "6f1b5c9e-0000-4000-8000-000000000001",
                  allow_loopback_http=True, sleep=lambda s: None)


def a_product_on_an_open_invoice(sim) -> dict:  # type: ignore[no-untyped-def]
    open_ids = open_invoice_ids(sim)
    return next(p for p in sim.state.data["products"].iter() if p.get("invoice", {}).get("id") in open_ids)


def review_state(app, tenant) -> dict:  # type: ignore[no-untyped-def]
    """Every snapshot and flag of the tenant, as stored (ciphertexts included)."""
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        snaps = {s.invoice_id: (s.content_hash, s.snapshot_at, s.payloads_enc, s.document_enc)
                 for s in session.execute(select(Snapshot)).scalars()}
        flags = {f.id: (f.rule, f.target_id, f.cleared_at, f.marked_ok_at, f.message_enc)
                 for f in session.execute(select(Flag)).scalars()}
    return {"snapshots": snaps, "flags": flags}


def sweeps_of(app, tenant) -> list[Sweep]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        return list(session.execute(select(Sweep).order_by(Sweep.started_at)).scalars())


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Review Co")


def test_a_full_sweep_stores_one_snapshot_per_open_invoice_and_none_for_sent_or_closed_ones(app, tenant, sim):
    before = len(sim.requests)
    result = sweep(app, tenant)
    assert result.outcome == "ok", result.reason
    expected = open_invoice_ids(sim)
    assert 0 < len(expected) < len(list(sim.state.data["invoices"].iter()))
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        snaps = session.execute(select(Snapshot)).scalars().all()
        assert {s.invoice_id for s in snaps} == expected
        one = next(s for s in snaps if s.invoice_id == min(expected))
        assert payloads_of(services_of(app).keyring, one).invoice_id == one.invoice_id
        assert one.invoice_number and one.company_name and one.display_type and one.currency
    assert result.invoices_seen == len(expected) == result.invoices_changed and result.invoices_failed == 0
    # Batched: a small fraction of a request per invoice, and the record counts what the simulator saw.
    assert result.cw_requests == len(sim.requests) - before
    assert result.cw_requests <= 0.2 * len(expected)
    [record] = sweeps_of(app, tenant)
    assert (record.outcome, record.kind, record.invoices_seen, record.cw_requests) == (
        "ok", "full", len(expected), result.cw_requests)
    assert record.finished_at is not None


def test_a_second_sweep_with_no_change_rewrites_nothing(app, tenant, sim):
    assert sweep(app, tenant).outcome == "ok"
    first = review_state(app, tenant)
    again = sweep(app, tenant)
    assert (again.outcome, again.invoices_changed, again.flags_raised, again.flags_cleared) == ("ok", 0, 0, 0)
    assert review_state(app, tenant) == first
    assert len(sweeps_of(app, tenant)) == 2


def test_a_mark_survives_sweeps_a_fixed_flag_clears_and_a_reappearing_one_comes_back_unmarked(
        app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    product = a_product_on_an_open_invoice(sim)
    path = f"procurement/products/{product['id']}"
    with cw(sim) as api:
        api.patch(path, [{"op": "replace", "path": "description", "value": f"Firewall {MARK}"}])
        first = sweep(app, tenant)
        assert first.flags_raised == 1
        services = services_of(app)
        with tenant_session(tenant.id, services.session_factory) as session:
            [flag] = open_flags(session, services.keyring)
            assert (flag.rule, flag.target_type, flag.target_id, flag.marked_ok) == (
                "marked_product", "product", product["id"], False)
            assert mark_ok(session, tenant.id, flag.id, Actor.user(tenant.owner_id, tenant.owner_email),
                           tenant.owner_id)
        # The invoice changes, the problem persists: same flag, still OK.
        api.patch(path, [{"op": "replace", "path": "quantity", "value": 3}])
        persisting = sweep(app, tenant)
        assert (persisting.invoices_changed, persisting.flags_raised, persisting.flags_cleared) == (1, 0, 0)
        with tenant_session(tenant.id, services.session_factory) as session:
            [same] = open_flags(session, services.keyring)
            assert (same.id, same.marked_ok, same.marked_ok_by) == (flag.id, True, tenant.owner_id)
        # Fixed upstream: cleared, kept as history.
        api.patch(path, [{"op": "replace", "path": "description", "value": "Firewall renewal"}])
        fixed = sweep(app, tenant)
        assert fixed.flags_cleared == 1
        with tenant_session(tenant.id, services.session_factory) as session:
            assert open_flags(session, services.keyring) == []
            assert session.get(Flag, flag.id).cleared_at is not None
        # Broken again: the same identity comes back, unmarked.
        api.patch(path, [{"op": "replace", "path": "description", "value": f"Firewall {MARK} again"}])
        back = sweep(app, tenant)
        assert back.flags_raised == 1
        with tenant_session(tenant.id, services.session_factory) as session:
            [reopened] = open_flags(session, services.keyring)
            assert (reopened.id, reopened.marked_ok, reopened.marked_ok_by) == (flag.id, False, None)
            actions = session.execute(select(AuditEntry.action)).scalars().all()
            assert "review.flag_marked_ok" in actions


def test_an_invoice_that_fails_to_reconstruct_is_recorded_and_keeps_its_snapshot_while_the_rest_go_on(
        app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    assert sweep(app, tenant).outcome == "ok"
    product = a_product_on_an_open_invoice(sim)
    broken_invoice = product["invoice"]["id"]
    before = review_state(app, tenant)["snapshots"]
    sim.state.data["products"].set_fields(product["id"], {"price": "XYZZY-42", "description": "changed"})
    other = next(p for p in sim.state.data["products"].iter()
                 if p.get("invoice", {}).get("id") in open_invoice_ids(sim) - {broken_invoice})
    sim.state.data["products"].set_fields(other["id"], {"description": "Changed upstream"})
    result = sweep(app, tenant)
    assert result.outcome == "ok"
    assert result.invoices_failed == 1 and result.invoices_changed == 1
    [failure] = result.failures
    assert failure["invoice_id"] == broken_invoice and "price" in failure["reason"]
    assert "XYZZY" not in failure["reason"]  # a reason names the field, never the value
    after = review_state(app, tenant)["snapshots"]
    assert after[broken_invoice] == before[broken_invoice]  # kept, not dropped as "no longer open"
    assert after[other["invoice"]["id"]][0] != before[other["invoice"]["id"]][0]
    assert set(after) == set(before)
    assert sweeps_of(app, tenant)[-1].failures == result.failures


class RevokeAfter(httpx.BaseTransport):
    """Real HTTP to the simulator; after ``n`` requests the simulator revokes the keys (an admin mid-sweep)."""

    def __init__(self, sim, n: int):  # type: ignore[no-untyped-def]
        self.sim, self.n, self.inner = sim, n, httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.n -= 1
        if self.n < 0:
            self.sim.configure(revoked=True)
        return self.inner.handle_request(request)


@pytest.mark.parametrize("fault", ["5xx storm", "revoked keys mid-sweep", "malformed JSON"])
def test_a_connectwise_fault_fails_the_sweep_with_its_reason_and_leaves_snapshots_and_flags_intact(
        app, tenant, sim, request, fault):
    rebuild_afterwards(request, sim)
    product = a_product_on_an_open_invoice(sim)
    with cw(sim) as api:
        api.patch(f"procurement/products/{product['id']}",
                  [{"op": "replace", "path": "description", "value": f"Router {MARK}"}])
    assert sweep(app, tenant).flags_raised == 1
    # Something a good sweep would change, so a half-written sweep would show.
    sim.state.data["products"].set_fields(product["id"], {"description": "Router fixed"})
    before = review_state(app, tenant)
    options: dict = {}
    if fault == "5xx storm":
        sim.configure(error_rate=1.0)
        words = "ConnectWise could not be read"
    elif fault == "malformed JSON":
        sim.configure(malformed_next=1000)
        words = "ConnectWise could not be read"
    else:
        options = {"transport": RevokeAfter(sim, 2)}  # statuses and the invoice list answer, the lines do not
        words = "ConnectWise could not be read"
    result = sweep(app, tenant, **options)
    sim.configure(error_rate=0.0, malformed_next=0, revoked=False)
    assert result.outcome == "failed" and words in (result.reason or "")
    assert review_state(app, tenant) == before
    last = sweeps_of(app, tenant)[-1]
    assert (last.outcome, last.reason, last.invoices_changed) == ("failed", result.reason, 0)
    assert last.cw_requests > 0


def _dump(owner_engine, tenant_id: uuid.UUID) -> str:  # type: ignore[no-untyped-def]
    """Every row of the tenant in every tenant table, as text (what a backup of its data would show)."""
    out = []
    with owner_engine.begin() as conn:
        conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        for table in Base.metadata.sorted_tables:
            if "tenant_id" in table.c:
                for row in conn.execute(select(table).where(table.c.tenant_id == tenant_id)):
                    out.append(repr(tuple(row)))
    return "\n".join(out)


def test_storage_off_purges_every_review_row_in_one_audited_step_and_sweeps_then_store_nothing(
        app, tenant, sim, owner_engine):
    assert sweep(app, tenant).outcome == "ok"
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        snaps = session.execute(select(Snapshot)).scalars().all()
        words = set()
        for s in snaps[:40]:
            p = payloads_of(services.keyring, s)
            for line in p.collections_json().get("procurement/products") or []:
                if len(line.get("description", "")) >= 8:
                    words.add(line["description"])
            words.add(s.company_name)
    assert words
    runner = app.test_cli_runner()
    out = runner.invoke(args=["review", "storage", str(tenant.id), "off"])
    assert out.exit_code == 0, out.output
    assert f"purged {len(snaps)} snapshots" in out.output
    dump = _dump(owner_engine, tenant.id)
    assert [w for w in words if w in dump] == []
    with tenant_session(tenant.id, services.session_factory) as session:
        for model in (Snapshot, Flag, Sweep):
            assert session.execute(select(model)).first() is None
        entry = session.execute(select(AuditEntry).where(AuditEntry.action == "review.storage_changed")).scalar_one()
        assert entry.after["purged"]["snapshots"] == len(snaps) and entry.after["storage_enabled"] is False
    off = sweep(app, tenant)
    assert off.outcome == "skipped"
    with tenant_session(tenant.id, services.session_factory) as session:
        assert session.execute(select(Sweep)).first() is None and session.execute(select(Snapshot)).first() is None
    assert runner.invoke(args=["review", "storage", str(tenant.id), "on"]).exit_code == 0
    assert sweep(app, tenant).outcome == "ok"


def test_encrypted_columns_hold_no_plaintext_and_do_not_decrypt_on_another_row(app, tenant, sim, request,
                                                                               owner_engine):
    rebuild_afterwards(request, sim)
    product = a_product_on_an_open_invoice(sim)
    with cw(sim) as api:
        api.patch(f"procurement/products/{product['id']}",
                  [{"op": "replace", "path": "description", "value": f"Secret widget {MARK}"}])
    assert sweep(app, tenant).flags_raised == 1
    keyring = services_of(app).keyring
    with owner_engine.begin() as conn:
        conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(tenant.id)})
        snaps = conn.execute(text("select id, invoice_id, invoice_number, company_name, payloads_enc, document_enc "
                                  "from review_snapshots")).all()
        flags = conn.execute(text("select id, message_enc from review_flags")).all()
    marked = next(s for s in snaps if s.invoice_id == product["invoice"]["id"])
    for blob in (marked.payloads_enc, marked.document_enc):
        for plain in (b"Secret widget", marked.invoice_number.encode(), marked.company_name.encode()):
            assert plain not in bytes(blob)
    assert b"marked" not in bytes(flags[0].message_enc)
    assert "Secret widget" in keyring.decrypt(bytes(marked.payloads_enc),
                                              FieldRef(tenant.id, "review_snapshots", marked.id, "payloads"))
    other = next(s for s in snaps if s.id != marked.id)
    with pytest.raises(DecryptionError):
        keyring.decrypt(bytes(marked.payloads_enc), FieldRef(tenant.id, "review_snapshots", other.id, "payloads"))
    with pytest.raises(DecryptionError):
        keyring.decrypt(bytes(marked.payloads_enc), FieldRef(uuid.uuid4(), "review_snapshots", marked.id, "payloads"))


def test_the_cli_sweeps_in_the_foreground_and_prints_the_open_flags(app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    product = a_product_on_an_open_invoice(sim)
    number = sim.state.data["invoices"].get(product["invoice"]["id"])["invoiceNumber"]
    runner = app.test_cli_runner()
    out = runner.invoke(args=["review", "sweep", str(tenant.id), "--full"])
    assert out.exit_code == 0, out.output
    assert "sweep full: ok" in out.output and "ConnectWise requests:" in out.output
    assert f"{len(open_invoice_ids(sim))} seen" in out.output
    listed = runner.invoke(args=["review", "flags", str(tenant.id), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines() if line.strip()]
    assert rows, "the simulator's seed trips the shipped rules"
    for row in rows:
        assert {"invoice_number", "rule", "severity", "target_type", "target_id", "message", "marked_ok"} <= set(row)
        assert row["severity"] in ("error", "warning", "info") and row["marked_ok"] is False
    one = rows[0]["invoice_number"]
    only = runner.invoke(args=["review", "flags", str(tenant.id), "--invoice", one, "--json"])
    assert {json.loads(line)["invoice_number"] for line in only.output.splitlines()} == {one}
    text_out = runner.invoke(args=["review", "flags", str(tenant.id), "--invoice", number])
    assert text_out.exit_code == 0
    bad = runner.invoke(args=["review", "sweep", str(uuid.uuid4())])
    assert bad.exit_code != 0 and "no workspace" in bad.output and "Traceback" not in bad.output


def test_the_periodic_fan_out_queues_a_sweep_for_connected_tenants_with_storage_on(app, tenant, make_tenant,
                                                                                   client, sim, redis_conn):
    from app.jobs.queue import fetch_job

    off = connected_tenant(client, make_tenant, sim, name="No Review Co")
    with tenant_session(off.id, app.extensions["session_factory"]) as session:
        set_storage(session, off.id, False, Actor.system("test"))
    with app.app_context():
        sweep_all_tenants()
    assert fetch_job(redis_conn, sweep_job_id(str(tenant.id))) is not None
    assert fetch_job(redis_conn, sweep_job_id(str(off.id))) is None
