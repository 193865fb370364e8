"""The invoice's activity timeline against the simulator: our events and ConnectWise's audit trail in one feed in
time order, a re-read that adds nothing twice, a ConnectWise failure that is said and keeps what was stored, every
kind's phrase, and ConnectWise's text escaped."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import render_template
from sqlalchemy import func, select

from app.audit.log import Actor
from app.review import events, timeline
from app.review.events import EventActor
from app.review.models import Event
from app.review.settings import set_storage
from app.services import services_of
from app.tenancy import tenant_session
from app.tenants.models import TenantSettings
from app.users.models import User
from tests.integration.invoice_helpers import connected_tenant, rebuild_afterwards, sim_knobs_at_defaults  # noqa: F401
from tests.integration.test_review_sweep import cw

FAST = {"sleep": lambda s: None, "max_retries": 1}
UTC = dt.UTC


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Timeline Co")


def a_moved_invoice(sim) -> dict:  # type: ignore[no-untyped-def]
    """An open invoice (still in review, still editable) whose seeded trail says it was created and then moved to
    another status."""
    data = sim.state.data
    open_statuses = {s["id"] for s in data["billingStatuses"].iter() if not s["closedFlag"] and not s["sentFlag"]}
    return next(i for i in data["invoices"].iter()
                if i["status"]["id"] in open_statuses and i["status"]["name"] != "New" and not i.get("glBatch")
                and len(data.audit_trail[("Invoice", i["id"])]) >= 2)


def seeded_moments(sim, invoice_id: int) -> list[dt.datetime]:  # type: ignore[no-untyped-def]
    return [dt.datetime.fromisoformat(e["enteredDate"].replace("Z", "+00:00"))
            for e in sim.state.data.audit_trail[("Invoice", invoice_id)]]


def fetch(app, tenant, invoice_id: int) -> int:  # type: ignore[no-untyped-def]
    return timeline.fetch_connectwise(services_of(app), tenant.id, invoice_id, client_options=FAST)


def add_event(app, tenant, invoice_id: int, kind: str, at: dt.datetime | None = None,  # type: ignore[no-untyped-def]
              actor: EventActor | None = None, **detail) -> None:
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        owner = session.get(User, tenant.owner_id)
        events.add(session, services.keyring, tenant.id, invoice_id, kind, actor or EventActor.for_user(owner),
                   detail, at=at)


def the_panel(app, tenant, invoice_id: int, user_id: uuid.UUID | None = None) -> dict:  # type: ignore[no-untyped-def]
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        user = session.get(User, user_id or tenant.owner_id)
        return timeline.panel(session, services, tenant.id, invoice_id, user)


def rendered(app, panel: dict) -> str:  # type: ignore[no-untyped-def]
    with app.test_request_context("/review/1"):
        return render_template("review/_timeline.html", timeline_panel=panel)


def stored_connectwise(app, tenant, invoice_id: int) -> int:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, services_of(app).session_factory) as session:
        return session.execute(select(func.count()).select_from(Event).where(
            Event.invoice_id == invoice_id, Event.kind == "connectwise")).scalar_one()


def test_the_timeline_merges_our_events_with_the_connectwise_trail_in_time_order(app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    invoice = a_moved_invoice(sim)
    iid = invoice["id"]
    created, *_rest, moved = seeded_moments(sim, iid)
    # Ours before, between and after ConnectWise's entries, and one after a change made in ConnectWise just now.
    add_event(app, tenant, iid, "viewed", at=created + dt.timedelta(minutes=1))
    add_event(app, tenant, iid, "approved", at=moved + dt.timedelta(hours=3))
    with cw(sim) as api:
        api.patch(f"finance/invoices/{iid}", [{"op": "replace", "path": "reference", "value": "Job 42"}])
    patched = dt.datetime.now(UTC).replace(microsecond=0)
    add_event(app, tenant, iid, "rejected", at=patched + dt.timedelta(seconds=5), reason="Wrong rate on line 2")

    trail = sim.state.data.audit_trail[("Invoice", iid)]
    assert fetch(app, tenant, iid) == len(trail)

    entries = the_panel(app, tenant, iid)["entries"]
    moments = [dt.datetime.fromisoformat(e["iso"]) for e in entries]
    assert moments == sorted(moments), "oldest first"
    said = [(e["source"], e["actor"]["name"], e["phrase"]) for e in entries]
    expected_cw = [("connectwise", t["enteredBy"], t["text"]) for t in trail]
    owner = ("ours", "Olive Owner")
    assert said == [expected_cw[0], (*owner, "viewed"), *expected_cw[1:-1], (*owner, "approved"), expected_cw[-1],
                    (*owner, "rejected")]
    assert expected_cw[-1] == ("connectwise", "bettersim_api", 'Reference changed from "" to "Job 42"')
    assert entries[-1]["note"] == "Wrong rate on line 2" and entries[-1]["badge"] == "rejected"
    assert {e["actor"]["type"] for e in entries if e["source"] == "connectwise"} == {"member"}
    assert {e["actor"]["type"] for e in entries if e["source"] == "ours"} == {"user"}

    html = rendered(app, the_panel(app, tenant, iid))
    assert html.count('class="badge tl-cw">ConnectWise</span>') == len(trail)
    assert 'id="review-timeline"' in html and "No activity yet." not in html
    first = entries[0]
    assert f'datetime="{first["iso"]}" title="{first["exact"]}"' in html
    assert "ConnectWise history read Today" in html


def test_a_re_read_adds_nothing_twice_and_a_new_change_once(app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    iid = a_moved_invoice(sim)["id"]
    first = fetch(app, tenant, iid)
    assert first >= 2
    before = len(sim.requests)
    assert fetch(app, tenant, iid) == 0
    assert len(sim.requests) - before == 1, "one request per read"
    assert stored_connectwise(app, tenant, iid) == first
    with cw(sim) as api:
        api.patch(f"finance/invoices/{iid}", [{"op": "replace", "path": "customerPO", "value": "PO-9"}])
    assert fetch(app, tenant, iid) == 1
    assert fetch(app, tenant, iid) == 0
    assert stored_connectwise(app, tenant, iid) == first + 1
    assert len(the_panel(app, tenant, iid)["entries"]) == first + 1


def test_each_workspace_keeps_its_own_copy_of_the_trail(app, client, make_tenant, sim, redis_conn):
    one = connected_tenant(client, make_tenant, sim, name="One Co")
    two = connected_tenant(client, make_tenant, sim, name="Two Co")
    iid = a_moved_invoice(sim)["id"]
    assert fetch(app, one, iid) >= 2
    assert the_panel(app, two, iid, two.owner_id)["entries"] == []
    assert fetch(app, two, iid) == stored_connectwise(app, one, iid) == stored_connectwise(app, two, iid)


def test_a_connectwise_failure_is_said_and_what_was_stored_stays(app, tenant, sim):
    iid = a_moved_invoice(sim)["id"]
    kept = fetch(app, tenant, iid)
    add_event(app, tenant, iid, "viewed")
    sim.configure(error_next=5, error_status=503)
    assert fetch(app, tenant, iid) == 0
    panel = the_panel(app, tenant, iid)
    assert panel["cw_error"] and "ConnectWise" in panel["cw_error"]
    assert len(panel["entries"]) == kept + 1
    html = rendered(app, panel)
    assert "ConnectWise history could not be loaded: " in html
    assert html.count("tl-cw") >= kept
    # Keys revoked: a different reason, still nothing lost; then ConnectWise answers again and the message goes.
    sim.configure(error_next=0, revoked=True)
    assert fetch(app, tenant, iid) == 0
    revoked = the_panel(app, tenant, iid)["cw_error"]
    assert revoked and revoked != panel["cw_error"]
    sim.configure(revoked=False)
    assert fetch(app, tenant, iid) == 0
    again = the_panel(app, tenant, iid)
    assert again["cw_error"] is None and len(again["entries"]) == kept + 1
    assert "could not be loaded" not in rendered(app, again)


def test_not_connected_and_storage_off_read_nothing(app, client, make_tenant, sim, redis_conn):
    lone = make_tenant("Unconnected Co")
    assert timeline.fetch_connectwise(services_of(app), lone.id, 3, client_options=FAST) == 0
    assert the_panel(app, lone, 3)["cw_error"] == "ConnectWise is not connected."
    tenant = connected_tenant(client, make_tenant, sim, name="Storage Off Co")
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        set_storage(session, tenant.id, False, Actor.user(tenant.owner_id, tenant.owner_email))
    before = len(sim.requests)
    assert fetch(app, tenant, 3) == 0
    assert len(sim.requests) == before and stored_connectwise(app, tenant, 3) == 0


def test_connectwise_text_and_our_details_are_escaped(app, tenant, sim, request):
    rebuild_afterwards(request, sim)
    iid = a_moved_invoice(sim)["id"]
    with cw(sim) as api:
        api.patch(f"finance/invoices/{iid}", [{"op": "replace", "path": "customerPO",
                                               "value": "<script>alert(1)</script>"}])
    assert fetch(app, tenant, iid) >= 1
    add_event(app, tenant, iid, "rejected", reason="<img src=x onerror=alert(2)>")
    add_event(app, tenant, iid, "viewed", actor=EventActor("guest", None, "<b>Guest</b>"))
    html = rendered(app, the_panel(app, tenant, iid))
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<b>Guest</b>" not in html and "&lt;b&gt;Guest&lt;/b&gt;" in html


def test_every_kind_reads_as_the_product_says_it(app, tenant):
    iid = 777
    start = dt.datetime.now(UTC) - dt.timedelta(hours=2)
    kinds = [
        ("viewed", {}), ("approved", {}), ("approved", {"joined": True, "confirmed_flags": 2, "outcome": "approved"}),
        ("unapproved", {}), ("rejected", {"reason": "Hours look high"}),
        ("closed", {}), ("status_changed", {"status": "Ready to Send"}), ("reviewer_added", {"name": "Dana Reyes"}),
        ("reviewer_removed", {"name": "Dana Reyes"}), ("flag_marked_ok", {"rule": "low_margin"}),
        ("flag_unmarked", {"rule": "low_margin"}),
        ("writeback_succeeded", {"status": "Ready to Send"}),
        ("writeback_failed", {"status": "Ready to Send", "reason": "ConnectWise refused: no permission"}),
        ("writeback_conflict", {"status": "Ready to Send", "theirs": "Sent", "by": "lmartin"}),
        ("commented", {"text": "Please check line 3"}), ("edited", {"what": "line 3", "before": "2", "after": "3"}),
    ]
    for n, (kind, detail) in enumerate(kinds):
        add_event(app, tenant, iid, kind, at=start + dt.timedelta(minutes=n), **detail)
    add_event(app, tenant, iid, "writeback_failed", at=start + dt.timedelta(minutes=30), actor=EventActor.system(),
              status="Needs Correction", reason="Invoice is closed in ConnectWise")
    entries = the_panel(app, tenant, iid)["entries"]
    said = [(e["phrase"], e["note"]) for e in entries]
    assert said == [
        ("viewed", ""), ("approved", ""),
        ("approved", "joined the reviewers · confirmed 2 open flags · every reviewer has approved: the invoice is approved"),
        ("undid their approval", ""), ("rejected", "Hours look high"),
        ("closed the review", ""), ("changed status → Ready to Send", ""), ("added Dana Reyes as reviewer", ""),
        ("removed Dana Reyes", ""), ("marked a flag OK", "Low profit margin"),
        ("unmarked a flag (no longer OK)", "Low profit margin"),
        ("set the status in ConnectWise → Ready to Send", ""),
        ("could not set the status in ConnectWise → Ready to Send", "ConnectWise refused: no permission"),
        ("did not overwrite the status in ConnectWise with Ready to Send", "ConnectWise shows Sent (set by lmartin)"),
        ("commented", ""), ("edited line 3", "2 → 3"),
        ("could not set the status in ConnectWise → Needs Correction", "Invoice is closed in ConnectWise"),
    ]
    assert entries[-1]["actor"] == {"type": "system", "name": "Better Invoice", "handle": "", "initials": "BI"}
    assert entries[0]["actor"]["initials"] == "OO"
    comment = next(e for e in entries if e["kind"] == "commented")
    assert comment["body"] == "Please check line 3" and comment["mine"] is True
    html = rendered(app, the_panel(app, tenant, iid))
    assert "changed status → Ready to Send" in html and '<p class="tl-bubble">Please check line 3</p>' in html
    assert "tl-badge-approved" in html and "tl-badge-rejected" in html


def test_an_invoice_with_no_activity_says_so(app, tenant):
    panel = the_panel(app, tenant, 424242)
    assert panel["entries"] == [] and panel["cw_error"] is None and panel["cw_never_read"] is True
    html = rendered(app, panel)
    assert "No activity yet." in html and 'id="review-timeline"' in html and "hx-swap-oob" not in html
    with app.test_request_context("/review/1"):
        oob = render_template("review/_timeline.html", timeline_panel=panel, oob=True)
    assert 'id="review-timeline"' in oob and 'hx-swap-oob="true"' in oob


def test_members_who_are_users_are_named_and_times_follow_the_workspace_zone(app, tenant, sim):
    iid = a_moved_invoice(sim)["id"]
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        session.add(User(id=uuid.uuid4(), tenant_id=tenant.id, email=f"laura-{uuid.uuid4().hex[:6]}@example.com",
                         name="Laura Martin", role="billing_manager", cw_member_id=152, cw_identifier="lmartin"))
        session.get(TenantSettings, tenant.id).timezone = "America/Chicago"
    fetch(app, tenant, iid)
    entries = the_panel(app, tenant, iid)["entries"]
    created = entries[0]
    assert created["source"] == "connectwise" and created["actor"]["name"] == "Laura Martin"
    assert created["actor"]["handle"] == "lmartin" and created["actor"]["initials"] == "LM"
    # Seeded at 09:00 UTC: 04:00 in Chicago (daylight saving time in June).
    assert created["exact"].endswith("04:00:00 CDT"), created["exact"]


def test_the_newest_entries_are_shown_when_there_are_very_many(app, tenant):
    start = dt.datetime.now(UTC) - dt.timedelta(days=1)
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        for n in range(timeline.SHOWN + 3):
            events.add(session, services.keyring, tenant.id, 55, "viewed", EventActor.system(),
                       at=start + dt.timedelta(seconds=n))
    panel = the_panel(app, tenant, 55)
    assert len(panel["entries"]) == timeline.SHOWN and panel["hidden"] == 3
    assert panel["entries"][-1]["iso"] == (start + dt.timedelta(seconds=timeline.SHOWN + 2)).isoformat()
    assert "3 earlier entries are not shown." in rendered(app, panel)
