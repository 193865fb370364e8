"""The incremental review sweep against the simulator: after a full sweep it asks ConnectWise only for what changed
(counted from the simulator's request log), re-snapshots exactly the invoices touched, drops an invoice that left
review, and is full when there is nothing to start from."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from app.review.models import Snapshot, Sweep
from app.review.snapshots import payloads_of
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from tests.integration.invoice_helpers import connected_tenant, rebuild_afterwards, sim_knobs_at_defaults  # noqa: F401
from tests.integration.test_review_sweep import FAST, cw, marked_products, open_invoice_ids


def sweep(app, tenant, kind="incremental"):  # type: ignore[no-untyped-def]
    return run_sweep(services_of(app), str(tenant.id), kind=kind, evaluate=marked_products, client_options=FAST)


def snapshot_times(app, tenant) -> dict[int, dt.datetime]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        return {s.invoice_id: s.snapshot_at for s in session.execute(select(Snapshot)).scalars()}


def stored_payloads(app, tenant, invoice_id: int):  # type: ignore[no-untyped-def]
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        snap = session.execute(select(Snapshot).where(Snapshot.invoice_id == invoice_id)).scalar_one()
        return payloads_of(services.keyring, snap)


def three_open_invoices(sim) -> tuple[int, dict, dict]:  # type: ignore[no-untyped-def]
    """An open invoice (its header will change), a product and a time entry on two other open invoices."""
    data, open_ids = sim.state.data, open_invoice_ids(sim)
    product = next(p for p in data["products"].iter() if p.get("invoice", {}).get("id") in open_ids)
    entry = next(t for t in data["timeEntries"].iter()
                 if t.get("invoice", {}).get("id") in open_ids - {product["invoice"]["id"]})
    header_id = min(open_ids - {product["invoice"]["id"], entry["invoice"]["id"]})
    return header_id, product, entry


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Incremental Co")


def test_the_first_sweep_of_a_tenant_is_full_even_when_asked_for_an_incremental_one(app, tenant, sim):
    result = sweep(app, tenant)
    assert (result.outcome, result.kind) == ("ok", "full"), result.reason
    assert set(snapshot_times(app, tenant)) == open_invoice_ids(sim)


def test_after_a_full_sweep_three_changed_invoices_are_re_snapshotted_alone_in_at_most_15_requests(
        app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    assert sweep(app, tenant, kind="full").outcome == "ok"
    before = snapshot_times(app, tenant)
    header_id, product, entry = three_open_invoices(sim)
    with cw(sim) as api:
        api.patch(f"finance/invoices/{header_id}", [{"op": "replace", "path": "customerPO", "value": "PO-INCR-1"}])
        api.patch(f"procurement/products/{product['id']}",
                  [{"op": "replace", "path": "description", "value": "Firewall REVIEWME"}])
        api.patch(f"time/entries/{entry['id']}", [{"op": "replace", "path": "notes", "value": "Rebuilt the VPN."}])
    logged = len(sim.requests)
    result = sweep(app, tenant)
    made = len(sim.requests) - logged
    assert (result.outcome, result.kind) == ("ok", "incremental"), result.reason
    assert result.cw_requests == made <= 15, [r.path for r in sim.requests[logged:]]
    touched = {header_id, product["invoice"]["id"], entry["invoice"]["id"]}
    after = snapshot_times(app, tenant)
    assert set(after) == set(before)
    assert {iid for iid in after if after[iid] != before[iid]} == touched
    assert (result.invoices_seen, result.invoices_changed, result.flags_raised) == (3, 3, 1)
    # What was re-read is the current ConnectWise data, lines and references complete.
    assert stored_payloads(app, tenant, header_id).header_json()["customerPO"] == "PO-INCR-1"
    lines = stored_payloads(app, tenant, entry["invoice"]["id"]).collections_json()
    assert any(t["id"] == entry["id"] and t["notes"] == "Rebuilt the VPN." for t in lines["time/entries"])
    assert lines["company"] and lines["setup"]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        kinds = session.execute(select(Sweep.kind).order_by(Sweep.started_at)).scalars().all()
    assert kinds == ["full", "incremental"]


def test_a_sweep_with_no_change_makes_at_most_four_requests_and_writes_nothing(app, tenant, sim):
    assert sweep(app, tenant, kind="full").outcome == "ok"
    before = snapshot_times(app, tenant)
    logged = len(sim.requests)
    result = sweep(app, tenant)
    assert (result.outcome, result.kind, result.invoices_seen, result.invoices_changed) == ("ok", "incremental", 0, 0)
    assert result.cw_requests == len(sim.requests) - logged <= 4
    assert snapshot_times(app, tenant) == before


def test_an_invoice_marked_sent_leaves_review_on_the_next_incremental_sweep(app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    assert sweep(app, tenant, kind="full").outcome == "ok"
    data = sim.state.data
    sent = next(s for s in data["billingStatuses"].iter() if s["sentFlag"] and not s["closedFlag"])
    leaving = min(open_invoice_ids(sim))
    with cw(sim) as api:
        api.patch(f"finance/invoices/{leaving}", [{"op": "replace", "path": "status", "value": {"id": sent["id"]}}])
    result = sweep(app, tenant)
    assert (result.outcome, result.kind, result.snapshots_dropped) == ("ok", "incremental", 1), result.reason
    assert leaving not in snapshot_times(app, tenant)
    assert set(snapshot_times(app, tenant)) == open_invoice_ids(sim)


def test_a_sweep_is_full_again_when_no_full_sweep_succeeded_for_a_day(app, tenant, sim):
    assert sweep(app, tenant, kind="full").outcome == "ok"
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.execute(update(Sweep).values(started_at=Sweep.started_at - dt.timedelta(hours=25)))
    assert sweep(app, tenant).kind == "full"
