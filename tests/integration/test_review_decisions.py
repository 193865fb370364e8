"""Decisions on an invoice's review, through the routes as a browser (htmx) sends them, against the simulator: the
approval chain (every current reviewer approves -> approved, written back as the mapped status), a rejection
(reason required, 422 beside the field without one), undo (the reviewer pending again, ConnectWise's status put back),
the soft gate (open error or warning flags listed, a confirmed approve goes through, info flags never ask), close,
a manual status change, a decider joining as a reviewer, and each decision's audit row (with source IP) and event."""

from __future__ import annotations

import uuid

import pytest
from rq import SimpleWorker
from sqlalchemy import delete, select

from app.audit.models import AuditEntry
from app.jobs.queue import get_queue
from app.review import events
from app.review.models import Flag, Reviewer, ReviewInvoice, WriteBack
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from tests.conftest import sign_in
from tests.integration.invoice_helpers import (  # noqa: F401
    add_user,
    connected_tenant,
    htmx,
    rebuild_afterwards,
    sim_knobs_at_defaults,
)
from tests.integration.test_review_sweep import FAST


def swept_tenant(request, app, client, make_tenant, sim, name: str):  # type: ignore[no-untyped-def]
    """A tenant connected to the simulator after a full sweep with the shipped rules (inbox rows, real flags);
    the simulator's data is rebuilt afterwards (write-backs change statuses there)."""
    rebuild_afterwards(request, sim)
    tenant = connected_tenant(client, make_tenant, sim, name=name)
    assert run_sweep(services_of(app), str(tenant.id), kind="full", client_options=FAST).outcome == "ok"
    return tenant


@pytest.fixture()
def swept(request, app, client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return swept_tenant(request, app, client, make_tenant, sim, "Decisions Co")


def session_of(app, tenant):  # type: ignore[no-untyped-def]
    return tenant_session(tenant.id, app.extensions["session_factory"])


def pick(app, tenant, kind: str = "clean") -> int:  # type: ignore[no-untyped-def]
    """An invoice in review: "clean" (no open flag), "flagged" (open error or warning flags), "info" (info only);
    its ConnectWise status "New", so every status a decision writes is a change."""
    with session_of(app, tenant) as s:
        rows = s.execute(select(ReviewInvoice).where(ReviewInvoice.is_open, ReviewInvoice.status_id == 1)
                         .order_by(ReviewInvoice.invoice_id)).scalars().all()
        match = {"clean": lambda r: r.open_flags == 0, "flagged": lambda r: r.blocking_flags > 0,
                 "info": lambda r: r.open_flags > 0 and r.blocking_flags == 0}[kind]
        found = [r.invoice_id for r in rows if match(r)]
    assert found, f"the simulator has a {kind} invoice"
    return found[0]


def set_reviewers(app, tenant, invoice_id: int, *user_ids: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as s:
        s.execute(delete(Reviewer).where(Reviewer.invoice_id == invoice_id))
        for uid in user_ids:
            s.add(Reviewer(id=uuid.uuid4(), tenant_id=tenant.id, invoice_id=invoice_id, user_id=uid,
                           name=f"Reviewer {uid.hex[:4]}", state="waiting", source="manual"))


def review(app, tenant, invoice_id: int) -> ReviewInvoice:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as s:
        row = s.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == invoice_id)).scalar_one()
        s.expunge(row)
        return row


def reviewer_states(app, tenant, invoice_id: int) -> dict[uuid.UUID | None, str]:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as s:
        return {r.user_id: r.state for r in s.execute(select(Reviewer).where(Reviewer.invoice_id == invoice_id))
                .scalars()}


def writebacks(app, tenant, invoice_id: int) -> list[WriteBack]:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as s:
        rows = s.execute(select(WriteBack).where(WriteBack.invoice_id == invoice_id)
                         .order_by(WriteBack.created_at)).scalars().all()
        for r in rows:
            s.expunge(r)
        return list(rows)


def timeline_kinds(app, tenant, invoice_id: int) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as s:
        return [(e.kind, e.detail) for e in events.of_invoice(s, services_of(app).keyring, invoice_id)]


def audits(app, tenant, action: str) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as s:
        rows = s.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).scalars().all()
        for r in rows:
            s.expunge(r)
        return list(rows)


def run_jobs(app, redis_conn, queue: str = "connectwise") -> None:  # type: ignore[no-untyped-def]
    q = get_queue(redis_conn, queue)
    with app.app_context():
        SimpleWorker([q], connection=redis_conn, serializer=q.serializer).work(burst=True)


def cw_status(sim, invoice_id: int) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    status = sim.state.data["invoices"].get(invoice_id)["status"]
    return status["id"], status["name"]


def post(client, path: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(path, data=data, headers=htmx(client))


def test_approval_by_every_reviewer_approves_the_invoice_and_writes_the_mapped_status(
        app, client, swept, sim, redis_conn):
    invoice_id = pick(app, swept)
    other = add_user(app, swept, "reviewer")
    set_reviewers(app, swept, invoice_id, swept.owner_id, other)
    before = cw_status(sim, invoice_id)
    assert before == (1, "New")

    first = post(client, f"/review/{invoice_id}/approve")
    assert first.status_code == 200, first.get_data(as_text=True)[:500]
    assert "waiting for 1 more reviewer" in first.get_data(as_text=True)
    assert review(app, swept, invoice_id).state == "needs_review"
    assert reviewer_states(app, swept, invoice_id) == {swept.owner_id: "approved", other: "waiting"}
    assert writebacks(app, swept, invoice_id) == [], "half a chain writes nothing"

    sign_in(client, swept, other)
    second = post(client, f"/review/{invoice_id}/approve")
    html = second.get_data(as_text=True)
    assert second.status_code == 200 and "the invoice is approved" in html
    row = review(app, swept, invoice_id)
    assert (row.state, row.state_by) == ("approved", other) and row.state_at is not None
    [wb] = writebacks(app, swept, invoice_id)
    assert (wb.decision, wb.state, wb.expected_status_id) == ("approved", "pending", before[0])
    assert 'hx-trigger="every 2s"' in html, "the panel polls while the write-back is under way"

    run_jobs(app, redis_conn)
    assert cw_status(sim, invoice_id) == (3, "Approved")  # the simulator's "Approved": the default by name
    [wb] = writebacks(app, swept, invoice_id)
    assert (wb.state, wb.target_status_name, wb.attempts) == ("done", "Approved", 1)
    assert review(app, swept, invoice_id).status_name == "Approved"
    kinds = [k for k, _ in timeline_kinds(app, swept, invoice_id)]
    assert kinds == ["approved", "approved", "writeback_succeeded"]
    polled = client.get(f"/review/{invoice_id}/decision?polled=1", headers=htmx(client)).get_data(as_text=True)
    assert "Written to ConnectWise" in polled and "every 2s" not in polled
    entries = audits(app, swept, "review.approved")
    assert len(entries) == 2 and all(e.source_ip == "127.0.0.1" for e in entries)
    assert entries[1].after["state"] == "approved" and entries[1].actor_id == str(other)
    assert audits(app, swept, "review.writeback_succeeded")[0].after["status"] == "Approved"


def test_a_rejection_needs_a_reason_and_rejects_the_invoice(app, client, swept, sim, redis_conn):
    invoice_id = pick(app, swept)
    other = add_user(app, swept, "reviewer")
    set_reviewers(app, swept, invoice_id, swept.owner_id, other)

    refused = post(client, f"/review/{invoice_id}/reject", reason="   ")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert 'id="reject-reason-error"' in html and "Say why" in html and 'aria-invalid="true"' in html
    assert review(app, swept, invoice_id).state == "needs_review"
    assert timeline_kinds(app, swept, invoice_id) == [] and audits(app, swept, "review.rejected") == []

    reason = "Line 3 bills 12 hours <b>twice</b>"
    done = post(client, f"/review/{invoice_id}/reject", reason=reason)
    html = done.get_data(as_text=True)
    assert done.status_code == 200
    assert "Line 3 bills 12 hours &lt;b&gt;twice&lt;/b&gt;" in html and "<b>twice" not in html
    assert review(app, swept, invoice_id).state == "rejected"
    assert reviewer_states(app, swept, invoice_id)[swept.owner_id] == "rejected"
    [(kind, detail)] = timeline_kinds(app, swept, invoice_id)
    assert kind == "rejected" and detail["reason"] == reason
    [entry] = audits(app, swept, "review.rejected")
    assert entry.after["reason_given"] is True and reason not in str(entry.after), "the reason stays encrypted"
    run_jobs(app, redis_conn)
    assert cw_status(sim, invoice_id) == (4, "Rejected")

    # Any rejection rejects: the other reviewer's approval does not outweigh it.
    sign_in(client, swept, other)
    post(client, f"/review/{invoice_id}/approve")
    assert review(app, swept, invoice_id).state == "rejected"


def test_undo_returns_the_reviewer_to_pending_and_puts_back_the_status_before_approval(
        app, client, swept, sim, redis_conn):
    invoice_id = pick(app, swept)
    set_reviewers(app, swept, invoice_id, swept.owner_id)
    before = cw_status(sim, invoice_id)
    post(client, f"/review/{invoice_id}/approve")
    run_jobs(app, redis_conn)
    assert cw_status(sim, invoice_id) == (3, "Approved")

    undone = post(client, f"/review/{invoice_id}/undo")
    assert undone.status_code == 200 and "Your approval is undone" in undone.get_data(as_text=True)
    assert review(app, swept, invoice_id).state == "needs_review"
    assert reviewer_states(app, swept, invoice_id)[swept.owner_id] in ("waiting", "viewed")
    run_jobs(app, redis_conn)
    assert cw_status(sim, invoice_id) == before
    last = writebacks(app, swept, invoice_id)[-1]
    assert (last.decision, last.state, last.target_status_id) == ("manual", "done", before[0])
    assert [k for k, _ in timeline_kinds(app, swept, invoice_id)] == [
        "approved", "writeback_succeeded", "unapproved", "writeback_succeeded"]
    assert audits(app, swept, "review.approval_undone")[0].after["state"] == "needs_review"
    # Nothing of mine left to undo.
    again = post(client, f"/review/{invoice_id}/undo")
    assert again.status_code == 422 and "no approval of yours to undo" in again.get_data(as_text=True)


def test_undo_before_the_write_back_ran_drops_it_and_writes_nothing(app, client, swept, sim, redis_conn):
    invoice_id = pick(app, swept)
    set_reviewers(app, swept, invoice_id, swept.owner_id)
    before = cw_status(sim, invoice_id)
    post(client, f"/review/{invoice_id}/approve")
    post(client, f"/review/{invoice_id}/undo")
    [wb] = writebacks(app, swept, invoice_id)
    assert wb.state == "superseded"
    patches = len([r for r in sim.requests if r.method == "PATCH"])
    run_jobs(app, redis_conn)
    assert cw_status(sim, invoice_id) == before
    assert len([r for r in sim.requests if r.method == "PATCH"]) == patches


def test_the_soft_gate_lists_open_error_and_warning_flags_and_a_confirmed_approve_goes_through(
        app, client, swept):
    invoice_id = pick(app, swept, "flagged")
    set_reviewers(app, swept, invoice_id, swept.owner_id)
    with session_of(app, swept) as s:
        blocking = s.execute(select(Flag.severity).where(Flag.invoice_id == invoice_id, Flag.cleared_at.is_(None),
                                                         Flag.severity.in_(("error", "warning")))).scalars().all()
    asked = post(client, f"/review/{invoice_id}/approve")
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and 'role="alertdialog"' in html and "Approve anyway" in html
    assert html.count('<li><span class="badge sev-') == len(blocking)
    assert review(app, swept, invoice_id).state == "needs_review"
    assert reviewer_states(app, swept, invoice_id)[swept.owner_id] == "waiting"
    assert timeline_kinds(app, swept, invoice_id) == []

    confirmed = post(client, f"/review/{invoice_id}/approve", confirm="1")
    assert confirmed.status_code == 200
    assert review(app, swept, invoice_id).state == "approved"
    [(kind, detail)] = timeline_kinds(app, swept, invoice_id)
    assert kind == "approved" and detail["confirmed_flags"] == len(blocking)
    assert audits(app, swept, "review.approved")[0].after["confirmed_flags"] == len(blocking)


def test_info_flags_never_ask(app, client, swept):
    invoice_id = pick(app, swept, "info")
    set_reviewers(app, swept, invoice_id, swept.owner_id)
    answer = post(client, f"/review/{invoice_id}/approve")
    assert "alertdialog" not in answer.get_data(as_text=True)
    assert review(app, swept, invoice_id).state == "approved"


def test_flags_marked_ok_no_longer_hold_the_approval(app, client, swept):
    invoice_id = pick(app, swept, "flagged")
    set_reviewers(app, swept, invoice_id, swept.owner_id)
    with session_of(app, swept) as s:
        from app.review import summary
        for flag in s.execute(select(Flag).where(Flag.invoice_id == invoice_id, Flag.cleared_at.is_(None))).scalars():
            flag.marked_ok_at, flag.marked_ok_by = flag.last_seen, swept.owner_id
        summary.refresh_flags(s, [invoice_id])
    assert "alertdialog" not in post(client, f"/review/{invoice_id}/approve").get_data(as_text=True)
    assert review(app, swept, invoice_id).state == "approved"


def test_close_ends_the_review_without_the_chain_and_writes_a_closed_status(app, client, swept, sim, redis_conn):
    invoice_id = pick(app, swept)
    waiting = add_user(app, swept, "reviewer")
    set_reviewers(app, swept, invoice_id, waiting)
    closed = post(client, f"/review/{invoice_id}/close", reason="Billed by hand")
    assert closed.status_code == 200 and "The review is closed" in closed.get_data(as_text=True)
    row = review(app, swept, invoice_id)
    assert (row.state, row.state_by) == ("closed", swept.owner_id)
    assert reviewer_states(app, swept, invoice_id) == {waiting: "waiting"}, "close skips the chain"
    run_jobs(app, redis_conn)
    assert cw_status(sim, invoice_id) == (7, "Closed")
    [(kind, detail), (done, _)] = timeline_kinds(app, swept, invoice_id)
    assert (kind, detail, done) == ("closed", {"reason": "Billed by hand"}, "writeback_succeeded")
    # A closed review takes no more decisions; a status change still goes through.
    refused = post(client, f"/review/{invoice_id}/approve")
    assert refused.status_code == 422 and "This review is closed" in refused.get_data(as_text=True)


def test_an_invoice_no_longer_open_in_connectwise_takes_no_more_decisions(app, client, swept):
    from app.review import summary

    invoice_id = pick(app, swept)
    set_reviewers(app, swept, invoice_id, swept.owner_id)
    with session_of(app, swept) as s:
        summary.mark_left(s, [invoice_id], review(app, swept, invoice_id).changed_at)
    for action in ("approve", "reject", "close"):
        refused = post(client, f"/review/{invoice_id}/{action}", reason="x")
        assert refused.status_code == 422 and "no longer open in ConnectWise" in refused.get_data(as_text=True)
    assert review(app, swept, invoice_id).state == "needs_review" and writebacks(app, swept, invoice_id) == []
    html = client.get(f"/review/{invoice_id}/decision", headers=htmx(client)).get_data(as_text=True)
    assert "Change status" in html and "/approve" not in html


def test_change_status_writes_any_billing_status_and_keeps_the_review_state(app, client, swept, sim, redis_conn):
    invoice_id = pick(app, swept)
    picker = client.get(f"/review/{invoice_id}/status", headers=htmx(client)).get_data(as_text=True)
    for name in ("New", "Ready for Review", "Approved", "Rejected", "Sent", "Closed"):
        assert f">{name}" in picker
    assert ">Void" not in picker, "inactive statuses are not offered"
    bad = post(client, f"/review/{invoice_id}/status", status_id="999")
    assert bad.status_code == 422 and "Pick one of your ConnectWise billing statuses" in bad.get_data(as_text=True)
    assert writebacks(app, swept, invoice_id) == []

    changed = post(client, f"/review/{invoice_id}/status", status_id="2")
    assert changed.status_code == 200 and "Ready for Review" in changed.get_data(as_text=True)
    assert review(app, swept, invoice_id).state == "needs_review"
    run_jobs(app, redis_conn)
    assert cw_status(sim, invoice_id) == (2, "Ready for Review")
    assert [(k, d.get("status")) for k, d in timeline_kinds(app, swept, invoice_id)] == [
        ("status_changed", "Ready for Review"), ("writeback_succeeded", "Ready for Review")]
    [entry] = audits(app, swept, "review.status_changed")
    assert entry.after["status_id"] == 2 and entry.source_ip == "127.0.0.1"


def test_a_decider_who_is_not_a_reviewer_joins_as_a_manual_reviewer(app, client, swept):
    invoice_id = pick(app, swept)
    other = add_user(app, swept, "reviewer")
    set_reviewers(app, swept, invoice_id, other)
    post(client, f"/review/{invoice_id}/approve")
    with session_of(app, swept) as s:
        mine = s.execute(select(Reviewer).where(Reviewer.invoice_id == invoice_id,
                                                Reviewer.user_id == swept.owner_id)).scalar_one()
        assert (mine.source, mine.state, mine.added_by) == ("manual", "approved", swept.owner_id)
    # A new reviewer's approval still waits for the one already there.
    assert review(app, swept, invoice_id).state == "needs_review"
    assert timeline_kinds(app, swept, invoice_id)[0][1]["joined"] is True


def test_a_routing_member_who_signed_in_decides_as_their_seeded_reviewer(app, client, swept):
    invoice_id = pick(app, swept)
    user_id = add_user(app, swept, "reviewer")
    with session_of(app, swept) as s:
        from app.users.models import User
        s.get(User, user_id).cw_member_id = 4242
        s.execute(delete(Reviewer).where(Reviewer.invoice_id == invoice_id))
        s.add(Reviewer(id=uuid.uuid4(), tenant_id=swept.id, invoice_id=invoice_id, member_id=4242, name="Routed",
                       state="waiting", source="routing"))
    sign_in(client, swept, user_id)
    post(client, f"/review/{invoice_id}/approve")
    with session_of(app, swept) as s:
        [row] = s.execute(select(Reviewer).where(Reviewer.invoice_id == invoice_id)).scalars()
        assert (row.source, row.user_id, row.state) == ("routing", user_id, "approved")
    assert review(app, swept, invoice_id).state == "approved"


def test_two_reviewers_approving_at_once_both_count(app, swept):
    """Each decision locks the review row: the second sees the first's approval and completes the chain."""
    import threading

    from app.audit.log import Actor
    from app.review import decisions
    from app.users.models import User

    invoice_id = pick(app, swept)
    a, b = add_user(app, swept, "reviewer"), add_user(app, swept, "reviewer")
    set_reviewers(app, swept, invoice_id, a, b)
    services, barrier = services_of(app), threading.Barrier(2)
    failures: list[BaseException] = []

    def decide(user_id: uuid.UUID) -> None:
        try:
            with session_of(app, swept) as s:
                user = s.get(User, user_id)
                barrier.wait(5)
                decisions.approve(s, services, swept.id, invoice_id, user, Actor.user(user.id, user.email))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=decide, args=(u,)) for u in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert failures == []
    assert review(app, swept, invoice_id).state == "approved"
    assert len(writebacks(app, swept, invoice_id)) == 1


def test_a_decision_answers_with_the_reviewers_and_timeline_out_of_band(app, client, swept):
    invoice_id = pick(app, swept)
    set_reviewers(app, swept, invoice_id, swept.owner_id)
    html = post(client, f"/review/{invoice_id}/approve").get_data(as_text=True)
    assert html.count('id="review-decision"') == 1
    assert html.count('hx-swap-oob="true"') == html.count('id="review-reviewers"') + html.count('id="review-timeline"')
    assert 'id="review-timeline"' in html and 'id="review-reviewers"' in html


def test_without_htmx_a_decision_redirects_back_to_the_review_page(app, client, swept):
    from tests.conftest import csrf_of

    invoice_id = pick(app, swept)
    set_reviewers(app, swept, invoice_id, swept.owner_id)
    answer = client.post(f"/review/{invoice_id}/approve", data={"csrf_token": csrf_of(client)})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/review/{invoice_id}")
    assert review(app, swept, invoice_id).state == "approved"


def test_only_review_roles_may_decide(app, client, swept):
    invoice_id = pick(app, swept)
    for role in ("viewer", "support"):
        if role == "support":
            continue  # support staff sign in through a grant; the route map test holds their refusal
        sign_in(client, swept, add_user(app, swept, role))
        for action in ("approve", "undo", "reject", "close", "status"):
            assert post(client, f"/review/{invoice_id}/{action}", reason="x", status_id="2").status_code == 403
    assert review(app, swept, invoice_id).state == "needs_review"
    sign_in(client, swept, add_user(app, swept, "billing_manager"))
    assert post(client, f"/review/{invoice_id}/approve").status_code == 200


def test_an_invoice_not_in_review_is_404(client, swept):
    assert post(client, "/review/987654/approve").status_code == 404
    assert client.get("/review/987654/decision", headers=htmx(client)).status_code == 404
