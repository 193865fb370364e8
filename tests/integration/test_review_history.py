"""The review sweep's history and its reads, against the simulator: the checks that look beyond one invoice
("agreement invoice amount changed", "rate differs from usual") fire in real sweeps on the seed's cases and stay
quiet without the trigger; a rescan, an incremental sweep and a rule settings change (which asks ConnectWise
nothing) all see the same history; an untouched invoice whose history moved is checked again; the first sweep
leaves agreement additions and payments (read per parent) to the details run after its flags, and later full
sweeps carry them from the snapshots; expense lines are polled once an hour, so a sweep with no change makes three
requests."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select, update

from app.audit.log import Actor
from app.review.details import fill_details
from app.review.flags import open_flags
from app.review.incremental import _period
from app.review.models import Snapshot, Sweep
from app.review.rescan import rescan_invoice
from app.review.rule_settings import current, save
from app.review.snapshots import document_of, payloads_of
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from tests.integration.invoice_helpers import connected_tenant, rebuild_afterwards, sim_knobs_at_defaults  # noqa: F401
from tests.integration.test_review_sweep import FAST, cw, open_invoice_ids

AGREEMENT = "agreement_amount_changed"
RATE = "rate_differs"


def sweep(app, tenant, kind="full"):  # type: ignore[no-untyped-def]
    result = run_sweep(services_of(app), str(tenant.id), kind=kind, client_options=FAST)
    assert result.outcome == "ok", result.reason
    return result


def flags(app, tenant, rule: str) -> dict[int, str]:  # type: ignore[no-untyped-def]
    """The open flags of ``rule`` by invoice id (their message)."""
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        return {f.invoice_id: f.message for f in open_flags(session, services.keyring) if f.rule == rule}


def by_path(sim, since: int) -> Counter:  # type: ignore[no-untyped-def]
    return Counter(re.sub(r"/\d+", "/{id}", r.path.split("/apis/3.0/")[-1]) for r in sim.requests[since:])


def stored_collections(app, tenant, invoice_id: int) -> dict:  # type: ignore[no-untyped-def]
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        snap = session.execute(select(Snapshot).where(Snapshot.invoice_id == invoice_id)).scalar_one()
        return payloads_of(services.keyring, snap).collections_json()


def section_keys(app, tenant, invoice_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        snap = session.execute(select(Snapshot).where(Snapshot.invoice_id == invoice_id)).scalar_one()
        return [section["key"] for section in document_of(services.keyring, snap)["sections"]]


def all_flags(app, tenant) -> dict:  # type: ignore[no-untyped-def]
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        return {f.id: (f.rule, f.target_id, f.message) for f in open_flags(session, services.keyring)}


def turn_on_rate_check(app, tenant):  # type: ignore[no-untyped-def]
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        wanted = current(session, tenant.id)
        wanted[RATE]["enabled"] = True
        return save(session, services.keyring, tenant.id, wanted, Actor.system("test"))


def open_agreement_pair(sim) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Two open agreement invoices on one agreement, the first the one just before the second."""
    open_ids = open_invoice_ids(sim)
    on: dict[int, list[dict]] = {}
    for invoice in sim.state.data["invoices"].iter():
        if invoice["type"] == "Agreement" and invoice.get("agreement"):
            on.setdefault(invoice["agreement"]["id"], []).append(invoice)
    for invoices in on.values():
        ordered = sorted(invoices, key=lambda i: (i["date"], i["id"]))
        for before, after in zip(ordered, ordered[1:], strict=False):
            if before["id"] in open_ids and after["id"] in open_ids:
                return before["id"], after["id"]
    raise AssertionError("the seed has no two open invoices in a row on one agreement")


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="History Co")


def test_a_full_sweep_flags_the_agreement_invoice_whose_total_moved_from_the_closed_one_before_it(app, tenant, sim):
    previous, changed = sim.state.data.cases[AGREEMENT]
    assert previous not in open_invoice_ids(sim) and changed in open_invoice_ids(sim)
    logged = len(sim.requests)
    sweep(app, tenant)
    message = flags(app, tenant, AGREEMENT)[changed]
    assert "INV-10001" in message and "$33.00 more" in message and "$1,509.00" in message
    # The previous invoice is read in one batched list for all the agreements, and kept with the snapshot.
    agreement_reads = [r for r in sim.requests[logged:] if "type" in r.query and "agreement" in r.query]
    assert len(agreement_reads) == 1
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        snap = session.execute(select(Snapshot).where(Snapshot.invoice_id == changed)).scalar_one()
        kept = payloads_of(services.keyring, snap).collections_json()["agreement_invoices"]
    assert [row["id"] for row in kept] == [previous]


def test_the_agreement_check_is_quiet_when_the_previous_total_is_the_same_and_fires_again_when_it_moves(
        app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    previous, changed = sim.state.data.cases[AGREEMENT]
    invoices = sim.state.data["invoices"]
    seeded_total = invoices.get(previous)["total"]
    invoices.set_fields(previous, {"total": invoices.get(changed)["total"]})
    sweep(app, tenant)
    assert changed not in flags(app, tenant, AGREEMENT)
    invoices.set_fields(previous, {"total": seeded_total})
    sweep(app, tenant)
    assert "$33.00 more" in flags(app, tenant, AGREEMENT)[changed]


def test_turning_the_rate_check_on_flags_the_entry_billed_above_its_roles_usual_rate_without_asking_connectwise(
        app, tenant, sim):
    [case] = sim.state.data.cases["rate_differs_from_usual"]
    sweep(app, tenant)
    assert flags(app, tenant, RATE) == {}  # ships off
    logged = len(sim.requests)
    saved = turn_on_rate_check(app, tenant)
    assert len(sim.requests) == logged  # the stored snapshots and their history, nothing else
    found = flags(app, tenant, RATE)
    assert set(found) == {case} and saved.raised == 1
    assert "50 % above the usual $95.00/h" in found[case]
    again = sweep(app, tenant)
    assert (again.flags_raised, again.flags_cleared) == (0, 0)
    assert set(flags(app, tenant, RATE)) == {case}


def test_a_rescan_clears_the_rate_flag_once_the_rate_is_the_usual_one_and_keeps_the_agreement_flag(
        app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    [case] = sim.state.data.cases["rate_differs_from_usual"]
    _previous, changed = sim.state.data.cases[AGREEMENT]
    sweep(app, tenant)
    turn_on_rate_check(app, tenant)
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        [flag] = [f for f in open_flags(session, services.keyring) if f.rule == RATE]
    entry = sim.state.data["timeEntries"].get(flag.target_id)
    with cw(sim) as api:
        api.patch(f"time/entries/{flag.target_id}", [{"op": "replace", "path": "hourlyRate",
                                                       "value": round(entry["hourlyRate"] / 1.5, 2)}])
    assert rescan_invoice(services, str(tenant.id), case).outcome == "ok"
    assert case not in flags(app, tenant, RATE)
    assert rescan_invoice(services, str(tenant.id), changed).outcome == "ok"  # history from the stored snapshots
    assert "INV-10001" in flags(app, tenant, AGREEMENT)[changed]


def test_an_untouched_invoice_is_checked_again_when_the_invoice_before_it_on_its_agreement_changes(
        app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    before, after = open_agreement_pair(sim)
    invoices = sim.state.data["invoices"]
    invoices.set_fields(before, {"total": invoices.get(after)["total"]})
    sweep(app, tenant)
    assert after not in flags(app, tenant, AGREEMENT)
    invoices.set_fields(before, {"total": invoices.get(after)["total"] - 250})
    with cw(sim) as api:  # any edit of the earlier invoice shows in the next incremental sweep's poll
        api.patch(f"finance/invoices/{before}", [{"op": "replace", "path": "customerPO", "value": "PO-HISTORY"}])
    result = sweep(app, tenant, kind="incremental")
    assert result.kind == "incremental" and result.invoices_seen == 1
    assert "$250.00 more" in flags(app, tenant, AGREEMENT)[after]


def test_the_first_sweep_leaves_additions_and_payments_to_the_details_run_which_fills_them_flags_unmoved(
        app, tenant, sim):
    services = services_of(app)
    logged = len(sim.requests)
    first = sweep(app, tenant)
    paths = by_path(sim, logged)
    assert paths["finance/invoices/{id}/payments"] == paths["finance/agreements/{id}/additions"] == 0
    assert first.cw_requests <= 0.05 * first.invoices_seen
    open_ids, invoices = open_invoice_ids(sim), sim.state.data["invoices"]
    credited = sorted(i for i in open_ids if invoices.get(i).get("credits") or invoices.get(i).get("payments"))
    agreements = {(invoices.get(i).get("agreement") or {}).get("id") for i in open_ids
                  if invoices.get(i)["type"] == "Agreement" or invoices.get(i).get("agreementAmount")} - {None}
    assert "payments" not in stored_collections(app, tenant, credited[0])
    assert "credits" in section_keys(app, tenant, credited[0])  # ConnectWise's figure, one line, meanwhile
    flags_before = all_flags(app, tenant)
    logged = len(sim.requests)
    filled = fill_details(services, str(tenant.id), client_options=FAST)
    paths = by_path(sim, logged)
    assert paths["finance/agreements/{id}/additions"] == len(agreements)  # once per agreement, not per invoice
    assert paths["finance/invoices/{id}/payments"] == len(credited)
    assert filled.outcome == "ok" and filled.invoices_filled == filled.invoices_pending > len(credited)
    assert stored_collections(app, tenant, credited[0])["payments"]
    assert all_flags(app, tenant) == flags_before  # the same flags, the same identities, nothing raised
    again = fill_details(services, str(tenant.id), client_options=FAST)
    assert (again.invoices_pending, again.cw_requests) == (0, 0)


def test_a_full_re_sweep_carries_additions_and_payments_from_the_snapshots_and_rewrites_nothing(app, tenant, sim):
    sweep(app, tenant)
    logged = len(sim.requests)
    fill_details(services_of(app), str(tenant.id), client_options=FAST)
    first = by_path(sim, logged)
    logged = len(sim.requests)
    again = sweep(app, tenant)
    paths = by_path(sim, logged)
    assert paths["finance/invoices/{id}/payments"] == 0
    assert paths["finance/agreements/{id}/additions"] < first["finance/agreements/{id}/additions"] / 3
    assert (again.invoices_changed, again.flags_raised, again.flags_cleared) == (0, 0, 0)
    assert again.cw_requests <= 0.05 * again.invoices_seen


def test_payments_are_read_again_when_the_invoices_paid_amounts_move(app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    open_ids = open_invoice_ids(sim)
    invoices = sim.state.data["invoices"]
    credited = next(i for i in invoices.iter() if i["id"] in open_ids and i.get("credits"))
    sweep(app, tenant)
    fill_details(services_of(app), str(tenant.id), client_options=FAST)
    invoices.set_fields(credited["id"], {"credits": credited["credits"] + 10, "balance": credited["balance"] - 10})
    logged = len(sim.requests)
    sweep(app, tenant)
    assert by_path(sim, logged)["finance/invoices/{id}/payments"] == 1


def test_a_sweep_with_no_change_makes_at_most_three_requests(app, tenant, sim):
    full = sweep(app, tenant)
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        started = session.execute(select(Sweep.started_at).where(Sweep.id == full.sweep_id)).scalar_one()
    logged = len(sim.requests)
    quiet = sweep(app, tenant, kind="incremental")
    crossed = _period(started) != _period(dt.datetime.now(dt.UTC))  # the first sweep of an hour polls expenses
    assert (quiet.kind, quiet.invoices_seen, quiet.invoices_changed) == ("incremental", 0, 0)
    assert quiet.cw_requests == len(sim.requests) - logged <= (4 if crossed else 3), by_path(sim, logged)


def test_expense_lines_are_polled_by_the_first_sweep_of_an_hour_from_the_last_that_polled_them(
        app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    sweep(app, tenant)
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.execute(update(Sweep).values(started_at=Sweep.started_at - dt.timedelta(hours=1)))
    expense = next(e for e in sim.state.data["expenseEntries"].iter()
                   if e.get("invoice", {}).get("id") in open_invoice_ids(sim))
    with cw(sim) as api:
        api.patch(f"expense/entries/{expense['id']}", [{"op": "replace", "path": "notes", "value": "Parking, site B"}])
    logged = len(sim.requests)
    first = sweep(app, tenant, kind="incremental")
    assert by_path(sim, logged)["expense/entries"] == 2  # the poll, then the touched invoice's lines
    assert first.invoices_changed == 1
    logged = len(sim.requests)
    sweep(app, tenant, kind="incremental")
    # Polled already this hour. (The edit also moved its invoice's lastUpdated, as ConnectWise does, so the overlap
    # window may read that invoice's lines again: a line read by invoice id, not a poll by lastUpdated.)
    polls = [r for r in sim.requests[logged:] if r.path.endswith("expense/entries")
             and "lastUpdated" in " ".join(parse_qs(r.query).get("conditions", []))]
    assert polls == []
