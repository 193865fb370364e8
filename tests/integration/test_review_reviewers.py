"""An invoice's reviewers: seeded once from its ConnectWise routing by a job of their own (users matched by member,
the rest member-only, inactive people left out, at most half the request ceiling), never re-added once removed;
added and removed by hand (manage_reviewers, audited and on the timeline, a duplicate refused inline); "Viewed" on
opening the page, once per content change; the panel's states and the inbox avatars."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import pytest
from rq import SimpleWorker
from sqlalchemy import event, func, select, update

from app.audit.log import Actor
from app.audit.models import AuditEntry
from app.connectwise.ratelimit import BudgetExhausted, RequestBudget
from app.jobs.queue import get_queue
from app.review import reviewers, routing
from app.review.events import of_invoice
from app.review.jobs import sweep_tenant
from app.review.models import Event, Reviewer, ReviewInvoice
from app.review.rescan import rescan_invoice, rescan_invoice_job
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from app.users.models import User
from tests.conftest import csrf_of, sign_in
from tests.integration.invoice_helpers import connected_tenant, htmx, sim_knobs_at_defaults  # noqa: F401
from tests.integration.test_review_sweep import FAST, open_invoice_ids, sweep

AT = chr(64)
JORDAN, LAURA, FAITH, NOAH = 141, 152, 146, 154  # the simulator's routing members (Noah Foster is inactive)


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Reviewers Co")


def session_of(app, tenant):  # type: ignore[no-untyped-def]
    return tenant_session(tenant.id, app.extensions["session_factory"])


def add_member_user(app, tenant, member_id: int, name: str, role: str = "reviewer", active: bool = True) -> uuid.UUID:  # type: ignore[no-untyped-def]
    """A user linked to a ConnectWise member, as member sync leaves one."""
    user_id = uuid.uuid4()
    with session_of(app, tenant) as session:
        session.add(User(id=user_id, tenant_id=tenant.id, email=f"m{member_id}-{user_id.hex[:4]}{AT}example.com",
                         name=name, role=role, active=active, cw_member_id=member_id))
    return user_id


def seed(app, tenant, **options):  # type: ignore[no-untyped-def]
    return routing.seed_routing(services_of(app), str(tenant.id), client_options={**FAST, **options})


def routing_of(sim) -> dict[int, list[int]]:  # type: ignore[no-untyped-def]
    """Each invoice's routed members in the simulator, in sequence order."""
    rows = sorted(sim.state.data["routings"].iter(), key=lambda r: (r["invoice"]["id"], r["sequenceNumber"]))
    found: dict[int, list[int]] = {}
    for r in rows:
        found.setdefault(r["invoice"]["id"], []).append(r["member"]["id"])
    return found


def routed(sim, invoice_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    return routing_of(sim).get(invoice_id, [])


def reviewer_rows(app, tenant, invoice_id: int | None = None) -> list[Reviewer]:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as session:
        query = select(Reviewer).order_by(Reviewer.invoice_id, Reviewer.added_at)
        if invoice_id is not None:
            query = query.where(Reviewer.invoice_id == invoice_id)
        rows = list(session.execute(query).scalars())
        session.expunge_all()
        return rows


def inbox_rows(app, tenant) -> dict[int, ReviewInvoice]:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as session:
        rows = {r.invoice_id: r for r in session.execute(select(ReviewInvoice)).scalars()}
        session.expunge_all()
        return rows


def routing_requests(sim, since: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [r for r in sim.requests[since:] if "/routings" in str(r)]


def an_invoice_routed_to(app, tenant, sim, *members: int) -> int:  # type: ignore[no-untyped-def]
    """An open invoice in review whose routing names exactly these members, in this order."""
    routes = routing_of(sim)
    return next(i for i in sorted(inbox_rows(app, tenant)) if routes.get(i, []) == list(members))


def open_invoice_routed_to(sim, *members: int) -> int:  # type: ignore[no-untyped-def]
    routes = routing_of(sim)
    return next(i for i in sorted(open_invoice_ids(sim)) if routes.get(i, []) == list(members))


def into_review(app, tenant, *invoice_ids: int) -> None:  # type: ignore[no-untyped-def]
    """Just these invoices in review (a rescan each: a few requests, where a full sweep reads all 316)."""
    for invoice_id in invoice_ids:
        result = rescan_invoice(services_of(app), str(tenant.id), invoice_id, client_options=FAST)
        assert result.outcome == "ok", result.reason


# -- seeding from routing ---------------------------------------------------------------------------------------


def test_routing_seeds_each_new_invoice_once_users_by_member_the_rest_member_only_inactive_left_out(
        app, tenant, sim):
    jordan = add_member_user(app, tenant, JORDAN, "Jordan Morales (app)")
    assert sweep(app, tenant).outcome == "ok"
    inbox = inbox_rows(app, tenant)
    before = len(sim.requests)
    result = seed(app, tenant)
    assert result.outcome == "ok", result.reason
    assert result.invoices_seeded == result.invoices_pending == len(inbox) and result.invoices_left == 0
    # One routing read per invoice and one members read for the names: nothing else.
    made = sim.requests[before:]
    assert result.cw_requests == len(made) == len(inbox) + 1
    assert all(row.routing_seeded_at is not None for row in inbox_rows(app, tenant).values())

    rows = reviewer_rows(app, tenant)
    assert result.reviewers_added == len(rows)
    by_invoice: dict[int, list[Reviewer]] = {}
    for row in rows:
        by_invoice.setdefault(row.invoice_id, []).append(row)
    routes = routing_of(sim)
    for invoice_id in inbox:
        expected = [m for m in routes.get(invoice_id, []) if m != NOAH]  # inactive in ConnectWise: not a reviewer
        assert [r.member_id for r in by_invoice.get(invoice_id, [])] == expected, invoice_id
    assert any(not routes.get(i) for i in inbox), "the seed has open invoices without routing"
    assert any(NOAH in routes.get(i, []) for i in inbox), "and some routed to an inactive member"
    jordans = [r for r in rows if r.member_id == JORDAN]
    assert jordans and all(r.user_id == jordan and r.name == "Jordan Morales (app)" for r in jordans)
    lauras = [r for r in rows if r.member_id == LAURA]
    assert lauras and all(r.user_id is None and r.name == "Laura Martin" for r in lauras)  # name from system/members
    assert {(r.state, r.source, r.state_at) for r in rows} == {("waiting", "routing", None)}

    # The timeline and the audit log say so (ConnectWise routing, the system's doing).
    invoice_id = an_invoice_routed_to(app, tenant, sim, JORDAN, FAITH)
    services = services_of(app)
    with session_of(app, tenant) as session:
        events = of_invoice(session, services.keyring, invoice_id)
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "review.reviewers_seeded")
                                ).scalars().all()
    assert [(e.kind, e.actor.type, e.detail["name"]) for e in events] == [
        ("reviewer_added", "system", "Jordan Morales (app)"), ("reviewer_added", "system", "Faith Nguyen")]
    # An audit row per chunk of invoices read, naming each invoice's new reviewers.
    assert len(audit) == -(-len(inbox) // routing.CHUNK)
    named = {k: v for a in audit for k, v in a.after["invoices"].items()}
    assert named[str(invoice_id)] == ["Jordan Morales (app)", "Faith Nguyen"]
    assert sum(len(v) for v in named.values()) == len(rows)

    # Seeded once: a second run reads nothing.
    before = len(sim.requests)
    again = seed(app, tenant)
    assert (again.outcome, again.invoices_pending, again.cw_requests) == ("ok", 0, 0)
    assert len(sim.requests) == before


def test_removed_reviewer_stays_removed_after_re_sweeps_and_re_runs(app, client, tenant, sim):
    assert sweep(app, tenant).outcome == "ok"
    assert seed(app, tenant).outcome == "ok"
    invoice_id = an_invoice_routed_to(app, tenant, sim, JORDAN, FAITH)
    [jordan, faith] = reviewer_rows(app, tenant, invoice_id)
    response = client.post(f"/review/{invoice_id}/reviewers/{jordan.id}/remove", headers=htmx(client))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]

    # ConnectWise still routes the invoice to Jordan; sweeps of every kind, and the job, run again.
    for kind in ("full", "incremental"):
        assert run_sweep(services_of(app), str(tenant.id), kind=kind, client_options=FAST).outcome == "ok"
        assert routing.request_routing(services_of(app), str(tenant.id)) is False  # nothing waits for routing
        assert seed(app, tenant).cw_requests == 0
    assert [r.member_id for r in reviewer_rows(app, tenant, invoice_id)] == [FAITH]
    assert routed(sim, invoice_id) == [JORDAN, FAITH]


def test_the_sweep_job_queues_routing_for_new_invoices_and_the_worker_seeds_them(app, tenant, sim, redis_conn):
    queue = get_queue(redis_conn, "connectwise")
    queue.empty()
    with app.app_context():
        sweep_tenant(str(tenant.id), "full")
    [queued] = queue.jobs
    assert queued.id == routing.routing_job_id(str(tenant.id)) and list(queued.args) == [str(tenant.id)]
    # The sweep's flags and inbox rows are already there while routing waits for a worker.
    assert inbox_rows(app, tenant) and not reviewer_rows(app, tenant)
    assert routing.request_routing(services_of(app), str(tenant.id)) is False  # one waiting run is enough
    with app.app_context():
        SimpleWorker([queue], connection=redis_conn, serializer=queue.serializer).work(burst=True)
    assert all(r.routing_seeded_at is not None for r in inbox_rows(app, tenant).values())
    assert reviewer_rows(app, tenant)
    # Nothing new: the next sweep queues no routing run.
    with app.app_context():
        sweep_tenant(str(tenant.id))
    assert queue.count == 0


def test_a_rescan_of_an_invoice_new_to_review_queues_its_routing(app, tenant, sim, redis_conn):
    queue = get_queue(redis_conn, "connectwise")
    queue.empty()
    invoice_id = open_invoice_routed_to(sim, JORDAN, FAITH)
    with app.app_context():
        rescan_invoice_job(str(tenant.id), invoice_id)
    assert [j.id for j in queue.jobs] == [routing.routing_job_id(str(tenant.id))]
    with app.app_context():
        SimpleWorker([queue], connection=redis_conn, serializer=queue.serializer).work(burst=True)
    assert [r.member_id for r in reviewer_rows(app, tenant, invoice_id)] == [JORDAN, FAITH]
    with app.app_context():
        rescan_invoice_job(str(tenant.id), invoice_id)  # seeded already: nothing queued
    assert queue.count == 0


def test_a_connectwise_failure_leaves_invoices_unseeded_for_a_later_try_and_logs_no_content(
        app, tenant, sim, caplog):
    assert sweep(app, tenant).outcome == "ok"
    sim.configure(revoked=True)
    with caplog.at_level(logging.INFO):
        failed = seed(app, tenant)
    assert failed.outcome == "failed" and failed.invoices_seeded == 0 and "AuthRefused" in (failed.reason or "")
    assert failed.invoices_left == failed.invoices_pending > 0
    # One chunk tried, then it stopped: the rest would only fail the same way.
    assert failed.cw_requests <= routing.CHUNK
    assert all(r.routing_seeded_at is None for r in inbox_rows(app, tenant).values())
    assert not reviewer_rows(app, tenant)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "review routing stopped" in logged and "Laura" not in logged and "INV-" not in logged
    sim.configure(revoked=False)
    later = seed(app, tenant)
    assert later.outcome == "ok" and later.invoices_seeded == failed.invoices_pending


def test_an_outage_midway_keeps_what_was_seeded_and_leaves_the_rest(app, tenant, sim, monkeypatch):
    assert sweep(app, tenant).outcome == "ok"
    pending = len(inbox_rows(app, tenant))
    assert pending > routing.CHUNK
    real_write = routing._write  # noqa: SLF001

    def then_an_outage(*args, **kwargs):  # type: ignore[no-untyped-def]
        real_write(*args, **kwargs)
        sim.configure(error_next=10 ** 6)  # ConnectWise goes down once the first chunk is written

    monkeypatch.setattr(routing, "_write", then_an_outage)
    result = seed(app, tenant)
    sim.configure(error_next=0)
    monkeypatch.setattr(routing, "_write", real_write)
    assert (result.outcome, result.invoices_seeded, result.invoices_left) == ("failed", routing.CHUNK,
                                                                             pending - routing.CHUNK)
    assert "Unavailable" in (result.reason or "")
    seeded = [r for r in inbox_rows(app, tenant).values() if r.routing_seeded_at is not None]
    assert len(seeded) == routing.CHUNK
    assert seed(app, tenant).invoices_seeded == pending - routing.CHUNK


def test_a_reviewer_added_by_hand_before_the_routing_was_read_is_kept_once(app, tenant, sim):
    jordan = add_member_user(app, tenant, JORDAN, "Jordan Morales")
    invoice_id = open_invoice_routed_to(sim, JORDAN, FAITH)
    into_review(app, tenant, invoice_id)
    services = services_of(app)
    with session_of(app, tenant) as session:
        owner = session.get(User, tenant.owner_id)
        reviewers.add(session, services.keyring, tenant.id, invoice_id, f"user:{jordan}", by=owner,
                      actor=Actor.user(owner.id, owner.email))
    assert seed(app, tenant).outcome == "ok"
    rows = reviewer_rows(app, tenant, invoice_id)
    assert [(r.member_id, r.source) for r in rows] == [(JORDAN, "manual"), (FAITH, "routing")]


def test_routing_uses_at_most_half_the_tenants_request_ceiling(app, tenant, sim, redis_conn):
    shared = RequestBudget(redis_conn, 10, window=60.0, max_wait=0.0)
    share = routing.RoutingShare(shared)
    assert share.limit == 5
    site = sim.url
    for _ in range(5):
        share.acquire(site, "share-test")
    with pytest.raises(BudgetExhausted):
        share.acquire(site, "share-test", max_wait=0.0)
    # The other half is still there for pages and sweeps.
    for _ in range(5):
        shared.acquire(site, "share-test")
    with pytest.raises(BudgetExhausted):
        shared.acquire(site, "share-test", max_wait=0.0)


def test_the_seeding_client_takes_each_slot_from_the_routing_share(app, tenant, sim, monkeypatch):
    into_review(app, tenant, open_invoice_routed_to(sim, JORDAN, FAITH), open_invoice_routed_to(sim, LAURA))
    taken = {"share": 0, "shared": 0}
    real_acquire = RequestBudget.acquire

    def counting(self, site, company_id="", *, max_wait=None):  # type: ignore[no-untyped-def]
        taken["share" if site.startswith("routing-share:") else "shared"] += 1
        return real_acquire(self, site, company_id, max_wait=max_wait)

    monkeypatch.setattr(RequestBudget, "acquire", counting)
    result = seed(app, tenant)
    assert result.outcome == "ok"
    # Every request (the API base is cached from the sweep) took a routing slot first, then a shared one.
    assert result.cw_requests == 3  # two routings, one members read
    assert taken["share"] == result.cw_requests and taken["shared"] == result.cw_requests


# -- adding and removing by hand --------------------------------------------------------------------------------


@pytest.fixture()
def seeded(app, tenant, sim):  # type: ignore[no-untyped-def]
    """An invoice in review routed to Jordan Morales then Faith Nguyen, and one routed to Laura Martin."""
    invoice_id = open_invoice_routed_to(sim, JORDAN, FAITH)
    into_review(app, tenant, invoice_id, open_invoice_routed_to(sim, LAURA))
    assert seed(app, tenant).invoices_seeded == 2
    return invoice_id


def test_the_picker_offers_active_users_and_known_members_filtered_as_you_type(app, client, tenant, seeded):
    brian = add_member_user(app, tenant, 143, "Brian Chen")
    add_member_user(app, tenant, 144, "Daniel Okafor", active=False)
    viewer = add_member_user(app, tenant, 145, "Emma Kowalski", role="viewer")
    url = f"/review/{seeded}/reviewers/candidates"
    html = client.get(url, headers=htmx(client)).get_data(as_text=True)
    assert f'value="user:{brian}"' in html and f'value="user:{viewer}"' in html
    assert "Daniel Okafor" not in html  # inactive
    assert "Emma Kowalski" in html and "viewer: cannot approve" in html
    assert f'value="member:{LAURA}"' in html  # member-only, known from other invoices' routing
    assert f'value="member:{FAITH}"' not in html and f'value="member:{JORDAN}"' not in html  # already reviewers
    narrowed = client.get(url, query_string={"q": "chen"}, headers=htmx(client)).get_data(as_text=True)
    assert "Brian Chen" in narrowed and "Laura Martin" not in narrowed and "Emma" not in narrowed
    assert "Laura Martin" in client.get(url, query_string={"q": "LAURA"}).get_data(as_text=True)
    nobody = client.get(url, query_string={"q": "%_zz"}).get_data(as_text=True)
    assert "Nobody matches" in nobody and "<option value=\"user:" not in nobody


def test_adding_a_reviewer_is_audited_on_the_timeline_and_swaps_the_panels(app, client, tenant, seeded):
    brian = add_member_user(app, tenant, 143, "Brian Chen")
    response = client.post(f"/review/{seeded}/reviewers", data={"who": f"user:{brian}"}, headers=htmx(client))
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    assert 'id="review-reviewers"' in html and "Brian Chen added as reviewer." in html
    rows = reviewer_rows(app, tenant, seeded)
    assert [(r.member_id, r.user_id, r.source, r.state) for r in rows][-1] == (143, brian, "manual", "waiting")
    assert rows[-1].added_by == tenant.owner_id
    with session_of(app, tenant) as session:
        [audit] = session.execute(select(AuditEntry).where(AuditEntry.action == "review.reviewer_added")).scalars()
        events = of_invoice(session, services_of(app).keyring, seeded)
    assert audit.target_id == str(seeded) and audit.actor_id == str(tenant.owner_id) and audit.source_ip
    assert (events[-1].kind, events[-1].actor.id, events[-1].detail) == (
        "reviewer_added", str(tenant.owner_id), {"name": "Brian Chen"})


def test_a_member_only_person_can_be_added_from_another_invoices_routing(app, client, tenant, seeded):
    response = client.post(f"/review/{seeded}/reviewers", data={"who": f"member:{LAURA}"}, headers=htmx(client))
    assert response.status_code == 200
    [*_, laura] = reviewer_rows(app, tenant, seeded)
    assert (laura.member_id, laura.user_id, laura.name) == (LAURA, None, "Laura Martin")


def test_a_duplicate_add_is_refused_politely_inline(app, client, tenant, seeded):
    before = reviewer_rows(app, tenant, seeded)
    response = client.post(f"/review/{seeded}/reviewers", data={"who": f"member:{FAITH}"}, headers=htmx(client))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Faith Nguyen is already a reviewer of this invoice." in html and 'class="field-error"' in html
    assert len(reviewer_rows(app, tenant, seeded)) == len(before)
    # The same person as a user linked to that member is the same reviewer.
    faith_user = add_member_user(app, tenant, FAITH, "Faith Nguyen")
    again = client.post(f"/review/{seeded}/reviewers", data={"who": f"user:{faith_user}"}, headers=htmx(client))
    assert again.status_code == 422 and "already a reviewer" in again.get_data(as_text=True)


@pytest.mark.parametrize("who", ["", "user:not-a-uuid", f"user:{uuid.uuid4()}", "member:999999", "robot:1",
                                 "member:12345678901234"])
def test_adding_nobody_we_know_is_refused_with_a_sentence(app, client, tenant, seeded, who):
    response = client.post(f"/review/{seeded}/reviewers", data={"who": who}, headers=htmx(client))
    assert response.status_code == 422 and 'class="field-error"' in response.get_data(as_text=True)


def test_removing_a_reviewer_is_logged_on_the_timeline_and_audited(app, client, tenant, seeded):
    [jordan, _faith] = reviewer_rows(app, tenant, seeded)
    response = client.post(f"/review/{seeded}/reviewers/{jordan.id}/remove", headers=htmx(client))
    assert response.status_code == 200 and "Removed Jordan Morales." in response.get_data(as_text=True)
    assert [r.member_id for r in reviewer_rows(app, tenant, seeded)] == [FAITH]
    with session_of(app, tenant) as session:
        [audit] = session.execute(select(AuditEntry).where(AuditEntry.action == "review.reviewer_removed")).scalars()
        events = of_invoice(session, services_of(app).keyring, seeded)
    assert audit.target_id == str(seeded)
    assert (events[-1].kind, events[-1].detail) == ("reviewer_removed", {"name": "Jordan Morales"})
    twice = client.post(f"/review/{seeded}/reviewers/{jordan.id}/remove", headers=htmx(client))
    assert twice.status_code == 422 and "already been removed" in twice.get_data(as_text=True)


def test_the_change_answers_with_the_timeline_and_decision_out_of_band(app, client, tenant, seeded):
    [jordan, _] = reviewer_rows(app, tenant, seeded)
    html = client.post(f"/review/{seeded}/reviewers/{jordan.id}/remove", headers=htmx(client)).get_data(as_text=True)
    assert html.index('id="review-reviewers"') < html.index('id="review-timeline"')
    for root in ("review-timeline", "review-decision"):
        tag = html[html.rfind("<", 0, html.index(f'id="{root}"')):html.index(">", html.index(f'id="{root}"'))]
        assert 'hx-swap-oob="true"' in tag, root
    timeline_html = html[html.index('id="review-timeline"'):]
    assert "removed Jordan Morales" in timeline_html, timeline_html[:3000]  # the timeline already says so


def test_removing_the_last_waiting_reviewer_completes_the_approval_chain(app, client, tenant, seeded):
    [jordan, faith] = reviewer_rows(app, tenant, seeded)
    with session_of(app, tenant) as session:
        session.execute(update(Reviewer).where(Reviewer.id == jordan.id)
                        .values(state="approved", state_at=dt.datetime.now(dt.UTC)))
    assert client.post(f"/review/{seeded}/reviewers/{faith.id}/remove", headers=htmx(client)).status_code == 200
    assert inbox_rows(app, tenant)[seeded].state == "approved"
    # And a new reviewer reopens it.
    brian = add_member_user(app, tenant, 143, "Brian Chen")
    assert client.post(f"/review/{seeded}/reviewers", data={"who": f"user:{brian}"},
                       headers=htmx(client)).status_code == 200
    assert inbox_rows(app, tenant)[seeded].state == "needs_review"


def test_without_htmx_a_change_redirects_to_the_review_page(app, client, tenant, seeded):
    [jordan, _] = reviewer_rows(app, tenant, seeded)
    response = client.post(f"/review/{seeded}/reviewers/{jordan.id}/remove", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/review/{seeded}")


def test_reviewer_routes_answer_404_for_an_invoice_not_in_review(app, client, tenant, seeded):
    missing = 10 ** 8
    assert client.get(f"/review/{missing}/reviewers").status_code == 404
    assert client.get(f"/review/{missing}/reviewers/candidates").status_code == 404
    assert client.post(f"/review/{missing}/reviewers", data={"who": "member:141"},
                       headers=htmx(client)).status_code == 404


def test_another_workspaces_invoice_and_reviewers_are_out_of_reach(app, client, tenant, seeded, make_tenant, sim):
    [jordan, _] = reviewer_rows(app, tenant, seeded)
    other = make_tenant("Other MSP")
    sign_in(client, other)
    assert client.get(f"/review/{seeded}/reviewers").status_code == 404
    assert client.post(f"/review/{seeded}/reviewers/{jordan.id}/remove", headers=htmx(client)).status_code == 404
    assert len(reviewer_rows(app, tenant, seeded)) == 2


@pytest.mark.parametrize("role", ["reviewer", "viewer"])
def test_roles_without_manage_reviewers_see_the_list_but_cannot_change_it(app, client, tenant, seeded, role):
    user_id = add_member_user(app, tenant, 150, "Kevin Brooks", role=role)
    sign_in(client, tenant, user_id)
    html = client.get(f"/review/{seeded}/reviewers").get_data(as_text=True)
    assert "Jordan Morales" in html and "Remove" not in html and "Add a reviewer" not in html
    [jordan, _] = reviewer_rows(app, tenant, seeded)
    assert client.post(f"/review/{seeded}/reviewers/{jordan.id}/remove", headers=htmx(client)).status_code == 403
    assert client.post(f"/review/{seeded}/reviewers", data={"who": f"member:{LAURA}"},
                       headers=htmx(client)).status_code == 403
    assert client.get(f"/review/{seeded}/reviewers/candidates").status_code == 403
    assert len(reviewer_rows(app, tenant, seeded)) == 2


# -- viewed, the panel, the inbox avatars -----------------------------------------------------------------------


def viewed_events(app, tenant, invoice_id: int) -> int:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as session:
        return session.execute(select(func.count()).select_from(Event).where(
            Event.invoice_id == invoice_id, Event.kind == "viewed")).scalar_one()


def view_as(app, tenant, invoice_id: int, user_id: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as session:
        user = session.get(User, user_id)
        reviewers.mark_viewed(session, services_of(app), tenant.id, invoice_id, user)


def test_a_waiting_reviewer_who_opens_the_page_is_viewed_once_per_content_change(app, tenant, sim):
    jordan = add_member_user(app, tenant, JORDAN, "Jordan Morales")
    invoice_id = open_invoice_routed_to(sim, JORDAN, FAITH)
    into_review(app, tenant, invoice_id)
    assert seed(app, tenant).outcome == "ok"
    view_as(app, tenant, invoice_id, jordan)
    [me, faith] = reviewer_rows(app, tenant, invoice_id)
    assert (me.state, faith.state) == ("viewed", "waiting") and me.state_at is not None
    for _ in range(3):  # reloads
        view_as(app, tenant, invoice_id, jordan)
    assert viewed_events(app, tenant, invoice_id) == 1
    # Someone who is not a reviewer leaves no trace.
    view_as(app, tenant, invoice_id, tenant.owner_id)
    assert viewed_events(app, tenant, invoice_id) == 1

    def content_changes() -> None:
        with session_of(app, tenant) as session:
            session.execute(update(ReviewInvoice).where(ReviewInvoice.invoice_id == invoice_id)
                            .values(changed_at=dt.datetime.now(dt.UTC)))

    content_changes()
    view_as(app, tenant, invoice_id, jordan)
    view_as(app, tenant, invoice_id, jordan)
    assert viewed_events(app, tenant, invoice_id) == 2
    assert reviewer_rows(app, tenant, invoice_id)[0].state_at > me.state_at
    # A decided reviewer stays decided.
    with session_of(app, tenant) as session:
        session.execute(update(Reviewer).where(Reviewer.id == me.id).values(state="approved"))
    content_changes()
    view_as(app, tenant, invoice_id, jordan)
    assert reviewer_rows(app, tenant, invoice_id)[0].state == "approved"
    assert viewed_events(app, tenant, invoice_id) == 2


def test_a_member_only_reviewer_who_signs_in_later_is_the_same_reviewer(app, tenant, seeded):
    [_, faith] = reviewer_rows(app, tenant, seeded)
    assert faith.user_id is None
    faith_user = add_member_user(app, tenant, FAITH, "Faith Nguyen")  # member sync made her a user
    view_as(app, tenant, seeded, faith_user)
    [_, same] = reviewer_rows(app, tenant, seeded)
    assert (same.id, same.user_id, same.state) == (faith.id, faith_user, "viewed")


def test_the_panel_shows_initials_names_and_state_phrases(app, client, tenant, seeded):
    [jordan, faith] = reviewer_rows(app, tenant, seeded)
    now = dt.datetime.now(dt.UTC)
    with session_of(app, tenant) as session:
        session.execute(update(Reviewer).where(Reviewer.id == jordan.id).values(state="approved", state_at=now))
    html = client.get(f"/review/{seeded}/reviewers").get_data(as_text=True)
    assert 'id="review-reviewers"' in html
    assert '<span class="avatar reviewer-avatar" aria-hidden="true">JM</span>' in html
    assert f"Approved · Today {now:%H:%M}" in html and "Waiting for review" in html
    assert "Faith Nguyen" in html and 'aria-label="Remove Faith Nguyen as reviewer"' in html
    assert reviewers.phrase("rejected", now - dt.timedelta(days=1), now=now).startswith("Rejected · Yesterday")
    assert reviewers.phrase("viewed", dt.datetime(2025, 11, 3, 9, tzinfo=dt.UTC),
                            now=dt.datetime(2025, 12, 1, tzinfo=dt.UTC)) == "Viewed · 3 Nov"


def test_names_from_connectwise_and_users_are_escaped(app, client, tenant, seeded):
    with session_of(app, tenant) as session:
        session.execute(update(Reviewer).where(Reviewer.invoice_id == seeded, Reviewer.member_id == FAITH)
                        .values(name="<script>alert(1)</script>"))
    html = client.get(f"/review/{seeded}/reviewers").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_avatars_for_gives_each_inbox_row_its_reviewers_in_one_query(app, tenant, seeded):
    ids = sorted(inbox_rows(app, tenant))[:50]
    with session_of(app, tenant) as session:
        statements: list[str] = []

        def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            statements.append(statement)

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            avatars = reviewers.avatars_for(session, ids)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len([s for s in statements if "review_reviewers" in s]) == 1
    assert avatars[seeded][0].initials == "JM" and avatars[seeded][0].label == "Jordan Morales · Waiting for review"
    assert [a.name for a in avatars[seeded]] == ["Jordan Morales", "Faith Nguyen"]
    assert all(i in ids for i in avatars)
