"""The inbox's rows follow the sweep: one per open invoice with its line counts and open-flag summary, a dismissed
flag no longer counts, an invoice that leaves the open set keeps its row (not open), and storage off purges them."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from app.audit.log import Actor
from app.review.flags import mark_ok
from app.review.models import WORST, Flag, ReviewInvoice, Snapshot
from app.review.settings import set_storage
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from tests.integration.invoice_helpers import connected_tenant, rebuild_afterwards
from tests.integration.test_review_sweep import (
    FAST,
    MARK,
    a_product_on_an_open_invoice,
    cw,
    marked_products,
    open_invoice_ids,
    sweep,
)


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Inbox Rows Co")


def rows(app, tenant) -> dict[int, ReviewInvoice]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        return {r.invoice_id: r for r in session.execute(select(ReviewInvoice)).scalars()}


def test_each_open_invoice_gets_an_inbox_row_with_its_line_counts(app, tenant, sim):
    assert sweep(app, tenant).outcome == "ok"
    found = rows(app, tenant)
    assert set(found) == open_invoice_ids(sim)
    data = sim.state.data
    some = max(found)
    assert found[some].product_count == sum(1 for p in data["products"].iter() if p.get("invoice", {}).get("id") == some)
    assert found[some].time_count == sum(1 for t in data["timeEntries"].iter()
                                         if (t.get("invoice") or {}).get("id") == some)
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        snap = session.execute(select(Snapshot).where(Snapshot.invoice_id == some)).scalar_one()
    assert (found[some].invoice_number, found[some].total, found[some].state, found[some].is_open) == (
        snap.invoice_number, snap.total, "needs_review", True)


def test_the_flag_summary_counts_open_flags_and_a_dismissed_one_no_longer_blocks(app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    product = a_product_on_an_open_invoice(sim)
    invoice_id = product["invoice"]["id"]
    with cw(sim) as api:
        api.patch(f"procurement/products/{product['id']}", [{"op": "replace", "path": "description",
                                                            "value": f"Router {MARK}"}])
    assert sweep(app, tenant).outcome == "ok"
    row = rows(app, tenant)[invoice_id]
    assert (row.worst_flag, row.open_flags, row.blocking_flags) == (WORST["warning"], 1, 1)
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        flag = session.execute(select(Flag).where(Flag.invoice_id == invoice_id)).scalar_one()
        mark_ok(session, tenant.id, flag.id, Actor.system("test"), None)
    row = rows(app, tenant)[invoice_id]
    assert (row.worst_flag, row.open_flags, row.blocking_flags) == (0, 0, 0)


def test_an_invoice_that_leaves_the_open_set_keeps_its_row_marked_not_open(app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    assert sweep(app, tenant).outcome == "ok"
    data = sim.state.data
    closed = next(s for s in data["billingStatuses"].iter() if s["closedFlag"])
    invoice_id = min(open_invoice_ids(sim))
    with cw(sim) as api:
        api.patch(f"finance/invoices/{invoice_id}", [{"op": "replace", "path": "status", "value": {"id": closed["id"]}}])
    assert sweep(app, tenant).outcome == "ok"
    row = rows(app, tenant)[invoice_id]
    assert row.is_open is False and row.left_open_at is not None


def test_storage_off_purges_the_inbox_rows_too(app, tenant, sim):
    assert sweep(app, tenant).outcome == "ok"
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        purged = set_storage(session, tenant.id, False, Actor.system("test"))
    assert purged["invoices"] == len(open_invoice_ids(sim)) and rows(app, tenant) == {}
    assert services_of(app) is not None


def test_snapshots_stored_before_the_inbox_existed_get_their_rows_on_the_next_sweep(app, tenant, sim):
    assert sweep(app, tenant).outcome == "ok"
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.execute(delete(ReviewInvoice))  # as after the upgrade that added the inbox: snapshots, no rows
    # An incremental sweep reads no invoice from ConnectWise here: the rows come from what is stored.
    again = run_sweep(services_of(app), str(tenant.id), kind="incremental", evaluate=marked_products,
                      client_options=FAST)
    assert (again.outcome, again.kind, again.invoices_seen, again.invoices_changed) == ("ok", "incremental", 0, 0)
    found = rows(app, tenant)
    assert set(found) == open_invoice_ids(sim)
    assert sum(r.open_flags for r in found.values()) == sum(1 for f in _open_flags(app, tenant))


def _open_flags(app, tenant) -> list[Flag]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        return list(session.execute(select(Flag).where(Flag.cleared_at.is_(None), Flag.marked_ok_at.is_(None))).scalars())
