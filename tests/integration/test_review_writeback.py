"""Write-back of decisions to ConnectWise against the simulator: the status changes there; a permission failure
(the key's security role lacks invoicing), an invoice closed in ConnectWise (exported to accounting) and an outage
(retried with back-off, then given up) are shown on the panel and the timeline with their reason and can be
retried, the decision staying recorded; a status changed in ConnectWise after the decision is a conflict, never
overwritten, until someone answers "Apply mine anyway" or "Keep theirs"; a newer decision supersedes a pending
write-back; and the status mapping (defaults by name and flags, the settings section, its validation and audit).

A status "changed by a person in ConnectWise" is set straight in the simulator's data with that person as
``updatedBy``: the simulator has no screens, and its API would name the API member instead."""

from __future__ import annotations

import datetime as dt

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.audit.log import Actor
from app.jobs.queue import get_queue
from app.review import status_map, writeback
from app.review.models import ReviewInvoice, ReviewSettings, WriteBack
from app.review.settings import set_storage
from app.review.status_map import Status
from app.services import services_of
from tests.conftest import csrf_of
from tests.integration.invoice_helpers import htmx, sim_knobs_at_defaults  # noqa: F401
from tests.integration.test_review_decisions import (
    audits,
    cw_status,
    pick,
    post,
    review,
    run_jobs,
    session_of,
    set_reviewers,
    swept_tenant,
    timeline_kinds,
    writebacks,
)
from tests.integration.test_review_sweep import FAST


@pytest.fixture()
def swept(request, app, client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return swept_tenant(request, app, client, make_tenant, sim, "Write-back Co")


@pytest.fixture()
def knobs(sim):  # type: ignore[no-untyped-def]
    """The simulator's permission and fault knobs back to normal afterwards."""
    yield sim
    sim.configure(forbidden="", error_rate=0.0, error_next=0)


def approved(app, client, tenant) -> tuple[int, WriteBack]:  # type: ignore[no-untyped-def]
    """A clean invoice approved by its one reviewer: its write-back pending, not yet run."""
    invoice_id = pick(app, tenant)
    set_reviewers(app, tenant, invoice_id, tenant.owner_id)
    assert post(client, f"/review/{invoice_id}/approve").status_code == 200
    [wb] = writebacks(app, tenant, invoice_id)
    assert wb.state == "pending"
    return invoice_id, wb


def attempt(app, tenant, wb: WriteBack) -> str:  # type: ignore[no-untyped-def]
    """One try of the write-back, as the job runs it (the client told not to sleep between its own retries)."""
    return writeback.perform(services_of(app), str(tenant.id), str(wb.id), client_options=FAST)


def state_of(app, tenant, wb: WriteBack) -> WriteBack:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as s:
        row = s.get(WriteBack, wb.id)
        s.expunge(row)
        return row


def panel(client, invoice_id: int) -> str:  # type: ignore[no-untyped-def]
    return client.get(f"/review/{invoice_id}/decision", headers=htmx(client)).get_data(as_text=True)


def changed_in_connectwise(sim, invoice_id: int, status_id: int, by: str = "lmartin") -> None:  # type: ignore[no-untyped-def]
    data = sim.state.data
    status = data["billingStatuses"].get(status_id)
    record = data["invoices"].get(invoice_id)
    data["invoices"].set_fields(invoice_id, {
        "status": {**record["status"], "id": status_id, "name": status["name"], "isClosed": status["closedFlag"]},
        "_info": {**record["_info"], "updatedBy": by}})


def test_the_status_changes_in_connectwise_after_an_uncached_read(app, client, swept, sim):
    invoice_id, wb = approved(app, client, swept)
    before = len(sim.requests)
    assert attempt(app, swept, wb) == "done"
    assert cw_status(sim, invoice_id) == (3, "Approved")
    made = [(r.method, r.path.split("/apis/3.0/")[-1]) for r in sim.requests[before:]]
    assert ("GET", f"finance/invoices/{invoice_id}") in made and ("PATCH", f"finance/invoices/{invoice_id}") in made
    assert attempt(app, swept, wb) == "done", "a write-back runs once"
    assert len([m for m in made if m[0] == "PATCH"]) == 1


def test_a_permission_failure_is_shown_and_retryable(app, client, swept, knobs):
    invoice_id, wb = approved(app, client, swept)
    before = cw_status(knobs, invoice_id)
    knobs.configure(forbidden="finance/invoices")
    assert attempt(app, swept, wb) == "failed"
    row = state_of(app, swept, wb)
    assert "lacks the Finance › Invoicing permission" in row.reason and row.attempts == 1, row.reason
    assert cw_status(knobs, invoice_id) == before
    assert review(app, swept, invoice_id).state == "approved", "the decision stays recorded"
    html = panel(client, invoice_id)
    assert "Not written to ConnectWise" in html and "lacks the Finance › Invoicing permission" in html
    assert f"/writeback/{wb.id}/retry" in html
    kind, detail = timeline_kinds(app, swept, invoice_id)[-1]
    assert kind == "writeback_failed" and "permission" in detail["reason"]
    assert audits(app, swept, "review.writeback_failed")[0].after["state"] == "failed"

    knobs.configure(forbidden="")
    retried = post(client, f"/review/{invoice_id}/writeback/{wb.id}/retry")
    assert retried.status_code == 200 and "Trying the write-back again" in retried.get_data(as_text=True)
    assert state_of(app, swept, wb).state == "pending"
    assert audits(app, swept, "review.writeback_retried")[0].source_ip == "127.0.0.1"
    assert attempt(app, swept, wb) == "done"
    assert cw_status(knobs, invoice_id) == (3, "Approved")
    # Retrying what is no longer failed is refused, changing nothing.
    again = post(client, f"/review/{invoice_id}/writeback/{wb.id}/retry")
    assert again.status_code == 422 and state_of(app, swept, wb).state == "done"


def test_an_invoice_closed_in_connectwise_is_shown_and_retryable(app, client, swept, sim):
    invoice_id, wb = approved(app, client, swept)
    before = cw_status(sim, invoice_id)
    sim.state.data["invoices"].set_fields(invoice_id, {"glBatch": {"id": 613, "name": "GL613"}})
    assert attempt(app, swept, wb) == "failed"
    reason = state_of(app, swept, wb).reason
    assert "closed in ConnectWise" in reason and "GL613" in reason, reason
    assert cw_status(sim, invoice_id) == before
    assert "GL613" in panel(client, invoice_id) and f"/writeback/{wb.id}/retry" in panel(client, invoice_id)

    sim.state.data["invoices"].set_fields(invoice_id, {"glBatch": None})  # unbatched in ConnectWise
    post(client, f"/review/{invoice_id}/writeback/{wb.id}/retry")
    assert attempt(app, swept, wb) == "done" and cw_status(sim, invoice_id) == (3, "Approved")


def test_an_outage_is_retried_with_growing_delays_then_given_up_and_can_be_retried(
        app, client, swept, knobs, redis_conn):
    invoice_id, wb = approved(app, client, swept)
    queue = get_queue(redis_conn, "connectwise")
    queue.empty()
    knobs.configure(error_rate=1.0)
    scheduled = ScheduledJobRegistry(queue=queue)
    for n in range(1, writeback.MAX_ATTEMPTS):
        assert attempt(app, swept, wb) == "pending"
        row = state_of(app, swept, wb)
        assert row.attempts == n and f"(try {n + 1} of {writeback.MAX_ATTEMPTS})" in row.reason
        assert "ConnectWise could not be reached" in row.reason
        assert len([j for j in scheduled.get_job_ids() if j.startswith(f"review-wb-{wb.id}")]) == n, \
            "the next try is scheduled, not run at once"
    assert "Waiting to be written to ConnectWise" in panel(client, invoice_id)
    assert attempt(app, swept, wb) == "failed"
    row = state_of(app, swept, wb)
    assert f"Gave up after {writeback.MAX_ATTEMPTS} tries" in row.reason
    assert [k for k, _ in timeline_kinds(app, swept, invoice_id)].count("writeback_failed") == 1
    assert review(app, swept, invoice_id).state == "approved"

    knobs.configure(error_rate=0.0)
    post(client, f"/review/{invoice_id}/writeback/{wb.id}/retry")
    assert state_of(app, swept, wb).attempts == 0
    assert attempt(app, swept, wb) == "done" and cw_status(knobs, invoice_id) == (3, "Approved")


def test_the_retry_delays_grow():
    assert list(writeback.RETRY_DELAYS) == sorted(writeback.RETRY_DELAYS) and writeback.RETRY_DELAYS[0] >= 30


def test_a_status_changed_in_connectwise_meanwhile_is_a_conflict_and_not_overwritten(app, client, swept, sim):
    invoice_id, wb = approved(app, client, swept)
    changed_in_connectwise(sim, invoice_id, 2)  # "Ready for Review", by a person
    patches = len([r for r in sim.requests if r.method == "PATCH"])
    assert attempt(app, swept, wb) == "conflict"
    assert cw_status(sim, invoice_id) == (2, "Ready for Review"), "not overwritten"
    assert len([r for r in sim.requests if r.method == "PATCH"]) == patches
    row = state_of(app, swept, wb)
    assert "Changed in ConnectWise to “Ready for Review” by lmartin meanwhile" in row.reason
    assert review(app, swept, invoice_id).status_name == "Ready for Review"
    kind, detail = timeline_kinds(app, swept, invoice_id)[-1]
    assert (kind, detail["theirs"], detail["by"], detail["status"]) == (
        "writeback_conflict", "Ready for Review", "lmartin", "Approved")
    html = panel(client, invoice_id)
    assert "Apply mine anyway" in html and "Keep theirs" in html

    applied = post(client, f"/review/{invoice_id}/writeback/{wb.id}/apply")
    assert applied.status_code == 200
    assert state_of(app, swept, wb).expected_status_id == 2
    assert attempt(app, swept, wb) == "done"
    assert cw_status(sim, invoice_id) == (3, "Approved")
    assert audits(app, swept, "review.writeback_forced")[0].after["expected_status_id"] == 2


def test_keep_theirs_leaves_connectwise_as_it_is_and_the_decision_recorded(app, client, swept, sim, redis_conn):
    invoice_id, wb = approved(app, client, swept)
    changed_in_connectwise(sim, invoice_id, 5)  # "Sent"
    assert attempt(app, swept, wb) == "conflict"
    kept = post(client, f"/review/{invoice_id}/writeback/{wb.id}/keep")
    assert kept.status_code == 200 and "Kept the status set in ConnectWise (Sent)" in kept.get_data(as_text=True)
    assert state_of(app, swept, wb).state == "superseded"
    run_jobs(app, redis_conn)
    assert cw_status(sim, invoice_id) == (5, "Sent")
    assert review(app, swept, invoice_id).state == "approved"
    assert audits(app, swept, "review.writeback_kept_theirs")[0].after["kept"] == "Sent"


def test_a_newer_decision_supersedes_a_pending_write_back(app, client, swept, sim):
    invoice_id, first = approved(app, client, swept)
    post(client, f"/review/{invoice_id}/status", status_id="2")
    old, new = writebacks(app, swept, invoice_id)
    assert (old.id, old.state, new.state, new.decision) == (first.id, "superseded", "pending", "manual")
    before = len(sim.requests)
    assert attempt(app, swept, old) == "superseded" and len(sim.requests) == before, "a superseded one never runs"
    assert attempt(app, swept, new) == "done" and cw_status(sim, invoice_id) == (2, "Ready for Review")


def test_a_newer_write_back_waits_for_a_running_older_one_and_its_status_is_no_conflict(
        app, client, swept, sim, redis_conn):
    invoice_id, first = approved(app, client, swept)
    with session_of(app, swept) as s:
        s.get(WriteBack, first.id).state = "running"  # its job is writing right now
    post(client, f"/review/{invoice_id}/status", status_id="2")
    _, second = writebacks(app, swept, invoice_id)
    queue = get_queue(redis_conn, "connectwise")
    queue.empty()
    before = len(sim.requests)
    assert attempt(app, swept, second) == "pending" and len(sim.requests) == before, "it waits, asking nothing"
    waiting = [j for j in ScheduledJobRegistry(queue=queue).get_job_ids() if j.startswith(f"review-wb-{second.id}")]
    assert len(waiting) == 1 and state_of(app, swept, second).attempts == 0

    changed_in_connectwise(sim, invoice_id, 3, by="bettersim_api")  # the first one's write lands
    with session_of(app, swept) as s:
        row = s.get(WriteBack, first.id)
        row.state, row.finished_at = "done", dt.datetime.now(dt.UTC)
    assert attempt(app, swept, second) == "done"
    assert cw_status(sim, invoice_id) == (2, "Ready for Review")


def test_a_write_back_stuck_running_is_waited_for_only_so_long_and_its_status_is_no_conflict(
        app, client, swept, sim):
    invoice_id, first = approved(app, client, swept)
    with session_of(app, swept) as s:
        s.get(WriteBack, first.id).state = "running"  # its worker died mid-write
    post(client, f"/review/{invoice_id}/status", status_id="2")
    _, second = writebacks(app, swept, invoice_id)
    changed_in_connectwise(sim, invoice_id, 3, by="bettersim_api")  # what it was writing did land
    result = writeback.perform(services_of(app), str(swept.id), str(second.id), waited=writeback.WAIT_ROUNDS,
                               client_options=FAST)
    assert result == "done" and cw_status(sim, invoice_id) == (2, "Ready for Review")


def test_turning_review_storage_off_leaves_a_queued_write_back_nothing_to_do(app, client, swept, sim):
    invoice_id, wb = approved(app, client, swept)
    with session_of(app, swept) as s:
        set_storage(s, swept.id, False, Actor.system("test"))
    before = cw_status(sim, invoice_id)
    assert attempt(app, swept, wb) == "gone" and cw_status(sim, invoice_id) == before


# --- the status mapping -----------------------------------------------------------------------------------------

def test_defaults_are_chosen_by_name_and_flags():
    sim_like = [Status(1, "New", 1, True), Status(2, "Ready for Review", 2), Status(3, "Approved", 3),
                Status(4, "Rejected", 4), Status(5, "Sent", 5, sent=True), Status(6, "Paid", 6, closed=True, sent=True),
                Status(7, "Closed", 7, closed=True, sent=True), Status(8, "Void", 8, closed=True, inactive=True)]
    assert status_map.default_map(sim_like) == {"approved": 3, "rejected": 4, "closed": 7}
    msp = [Status(10, "Draft", 1, True), Status(11, "Approved (old)", 2, inactive=True), Status(12, "Ready to Send", 3),
           Status(13, "Needs Correction", 4), Status(14, "Sent", 5, sent=True), Status(15, "Exported", 6, closed=True)]
    assert status_map.default_map(msp) == {"approved": 12, "rejected": 13, "closed": 15}
    assert status_map.default_map([Status(1, "Open", 1, True), Status(2, "Ready to Send (sent)", 2, sent=True)]) == {
        "approved": None, "rejected": None, "closed": None}


def test_the_settings_section_lists_the_tenants_statuses_with_the_defaults(client, swept):
    html = client.get("/settings/review/").get_data(as_text=True)
    assert 'hx-get="/settings/review/status-map/"' in html and 'hx-trigger="load"' in html
    section = client.get("/settings/review/status-map/", headers=htmx(client)).get_data(as_text=True)
    assert "Default: Approved" in section and "Default: Rejected" in section and "Default: Closed" in section
    assert "Ready for Review" in section


def save_map(client, **picked: str):  # type: ignore[no-untyped-def]
    data = {"approved": "", "rejected": "", "closed": "", **picked, "csrf_token": csrf_of(client)}
    return client.post("/settings/review/status-map/", data=data, headers=htmx(client))


def test_a_picked_status_is_saved_audited_and_written_back(app, client, swept, sim, redis_conn):
    saved = save_map(client, approved="2")
    assert saved.status_code == 200 and "Status mapping saved." in saved.get_data(as_text=True)
    [entry] = audits(app, swept, "review.status_map_changed")
    assert (entry.before, entry.after) == ({"approved": None}, {"approved": 2})
    with session_of(app, swept) as s:
        assert s.get(ReviewSettings, swept.id).status_map == {"approved": 2}
    assert "Nothing changed." in save_map(client, approved="2").get_data(as_text=True)
    invoice_id, wb = approved(app, client, swept)
    run_jobs(app, redis_conn)
    assert cw_status(sim, invoice_id) == (2, "Ready for Review")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("closed", "3", "has none"),  # Close needs a status with the Closed flag
    ("rejected", "5", "Closed or Sent flag"),
    ("approved", "8", "inactive"),
    ("approved", "999", "Pick one of your ConnectWise billing statuses"),
    ("approved", "abc", "Pick one of your ConnectWise billing statuses"),
])
def test_a_status_that_cannot_serve_is_refused_beside_its_field(app, client, swept, field, value, message):
    refused = save_map(client, **{field: value})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and message in html
    assert f'id="status-map-{field}-error"' in html
    assert audits(app, swept, "review.status_map_changed") == []


def test_a_viewer_may_not_change_the_mapping(app, client, swept):
    from tests.conftest import sign_in
    from tests.integration.invoice_helpers import add_user

    sign_in(client, swept, add_user(app, swept, "viewer"))
    assert save_map(client, approved="2").status_code == 403
    assert client.get("/settings/review/status-map/", headers=htmx(client)).status_code == 403


def test_the_invoice_row_follows_the_written_status(app, client, swept):
    invoice_id, wb = approved(app, client, swept)
    attempt(app, swept, wb)
    with session_of(app, swept) as s:
        row = s.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == invoice_id)).scalar_one()
        assert (row.status_id, row.status_name) == (3, "Approved")
