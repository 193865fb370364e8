"""The plan's limits where they bite, on the real database as the app role with RLS and against the simulator:
seats (3 users with access on Free, the 4th refused with an upgrade prompt, member sync's new members beyond the
limit arriving with no access), the review limit (a Free sweep reviews the 25 most recent open invoices, by date
then id, and says so), a downgrade keeping everything read-only (nothing deleted, decisions refused beyond the
limit, allowed within), a trial that ended and a grace period that ran out falling back to Free."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select, update

from app.audit.models import AuditEntry
from app.billing.models import TenantBilling
from app.connectwise.members import apply_members
from app.connectwise.records import Member
from app.review.fetch import most_recent_first
from app.review.models import Flag, ReviewInvoice, Snapshot, Sweep
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from app.tenants.models import TenantSettings
from app.users.models import User
from tests.conftest import csrf_of, sign_in
from tests.integration.invoice_helpers import connected_tenant, htmx, rebuild_afterwards, sim_knobs_at_defaults  # noqa: F401
from tests.integration.signin_helpers import AT
from tests.integration.test_review_sweep import FAST, marked_products, open_invoice_ids

HX = {"HX-Request": "true"}
NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _clean(redis_conn):  # type: ignore[no-untyped-def]
    return redis_conn


def set_billing(app, tenant, **values) -> None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        s.execute(update(TenantBilling).values(**values))


def free(app, tenant) -> None:  # type: ignore[no-untyped-def]
    """A workspace whose subscription was canceled: the Free plan."""
    set_billing(app, tenant, plan="pro", status="canceled")


def add_users(app, tenant, n: int, role: str = "viewer", active: bool = True) -> list[uuid.UUID]:  # type: ignore[no-untyped-def]
    ids = []
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        for _ in range(n):
            user = User(id=uuid.uuid4(), tenant_id=tenant.id, email=f"{role}-{uuid.uuid4().hex[:6]}{AT}x.example",
                        name=role.title(), role=role, active=active)
            s.add(user)
            ids.append(user.id)
    return ids


def seats(app, tenant) -> int:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        return s.execute(select(func.count()).select_from(User)
                         .where(User.active, User.role != "no_access")).scalar_one()


def post_add(client, email: str, role: str = "viewer"):  # type: ignore[no-untyped-def]
    return client.post("/settings/users/", data={"email": email, "name": "New", "role": role},
                       headers={"X-CSRF-Token": csrf_of(client)})


# --- seats -----------------------------------------------------------------------------------------------------


def test_free_takes_a_third_user_and_refuses_the_fourth_with_an_upgrade_prompt(app, client, make_tenant):
    t = make_tenant()
    free(app, t)
    add_users(app, t, 1)  # the owner and one viewer: 2 of 3
    sign_in(client, t)
    third = post_add(client, f"third{AT}x.example")
    assert third.status_code == 302 and seats(app, t) == 3
    page = client.get("/settings/users/").get_data(as_text=True)
    assert "Free plan: 3 of 3 users with access." in page and 'href="/settings/billing/"' in page
    fourth = post_add(client, f"fourth{AT}x.example")
    body = fourth.get_data(as_text=True)
    assert fourth.status_code == 422 and "Upgrade to Pro" in body and "up to 3 users" in body
    assert seats(app, t) == 3
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        assert s.execute(select(User).where(User.email == f"fourth{AT}x.example")).first() is None


def test_at_the_limit_a_no_access_user_may_still_be_added_but_not_given_a_role(app, client, make_tenant):
    t = make_tenant()
    free(app, t)
    add_users(app, t, 2)
    [listed] = add_users(app, t, 1, role="no_access")
    sign_in(client, t)
    assert post_add(client, f"listed{AT}x.example", role="no_access").status_code == 302
    refused = client.post(f"/settings/users/{listed}/role", data={"role": "viewer"},
                          headers={**HX, "X-CSRF-Token": csrf_of(client)})
    assert "Upgrade to Pro" in refused.get_data(as_text=True)
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        assert s.get(User, listed).role == "no_access"


def test_reactivating_someone_with_a_role_needs_a_free_seat(app, client, make_tenant):
    t = make_tenant()
    free(app, t)
    add_users(app, t, 2)
    [gone] = add_users(app, t, 1, active=False)
    sign_in(client, t)
    refused = client.post(f"/settings/users/{gone}/active", data={"active": "true"},
                          headers={**HX, "X-CSRF-Token": csrf_of(client)})
    assert "Upgrade to Pro" in refused.get_data(as_text=True) and seats(app, t) == 3


def test_after_a_downgrade_everyone_keeps_access_but_no_new_seat_is_given(app, client, make_tenant):
    t = make_tenant()
    add_users(app, t, 4)  # 5 users with access on Pro (comped)
    assert post_add(client_signed_in(client, t), f"sixth{AT}x.example").status_code == 302
    free(app, t)
    assert seats(app, t) == 6  # nobody lost access
    page = client.get("/settings/users/").get_data(as_text=True)
    assert "Free plan: 6 of 3 users with access." in page and "Everyone who has access keeps it." in page
    assert post_add(client, f"seventh{AT}x.example").status_code == 422


def client_signed_in(client, tenant):  # type: ignore[no-untyped-def]
    sign_in(client, tenant)
    return client


@pytest.mark.parametrize("status", ["comped", "active"])
def test_comped_and_active_pro_have_unlimited_seats(app, client, make_tenant, status: str):
    t = make_tenant()
    set_billing(app, t, plan="pro", status=status)
    add_users(app, t, 5)
    sign_in(client, t)
    assert post_add(client, f"seventh{AT}x.example").status_code == 302 and seats(app, t) == 7
    assert "users with access." not in client.get("/settings/users/").get_data(as_text=True)


def test_member_sync_gives_new_members_beyond_the_seats_no_access_with_a_note(app, make_tenant):
    t = make_tenant()
    add_users(app, t, 1)  # owner + 1: one seat left of 3
    members = [Member(id=900 + i, identifier=f"m{i}", name=f"Member {i}", email=f"m{i}{AT}x.example", active=True)
               for i in range(3)]
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        s.execute(update(TenantSettings).values(new_member_role="viewer"))
        outcome = apply_members(s, t.id, members, seat_limit=3)
    assert outcome.created == 3 and outcome.no_seat == 2
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        roles = dict(s.execute(select(User.cw_member_id, User.role).where(User.cw_member_id.is_not(None))).tuples().all())
        notes = [e.after.get("note") for e in s.execute(select(AuditEntry)
                 .where(AuditEntry.action == "connectwise.member_created")).scalars()]
    assert sorted(roles.values()) == ["no_access", "no_access", "viewer"]
    assert sorted(n or "" for n in notes) == ["", "no access: the plan's 3 seats are taken",
                                                "no access: the plan's 3 seats are taken"]
    assert seats(app, t) == 3


def test_member_sync_without_a_limit_gives_every_new_member_the_default_role(app, make_tenant):
    t = make_tenant()
    members = [Member(id=950 + i, identifier=f"p{i}", name=f"P {i}", email=f"p{i}{AT}x.example", active=True)
               for i in range(4)]
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        s.execute(update(TenantSettings).values(new_member_role="viewer"))
        assert apply_members(s, t.id, members, seat_limit=None).no_seat == 0
    assert seats(app, t) == 5


# --- review ----------------------------------------------------------------------------------------------------


def most_recent(sim, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The n most recent open invoices of the simulator, by date then id, as ConnectWise lists them."""
    open_ids = open_invoice_ids(sim)
    rows = {i["id"]: i for i in sim.state.data["invoices"].iter() if i["id"] in open_ids}
    return most_recent_first(rows)[:n]


def snapshot_ids(app, tenant) -> set[int]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        return set(s.execute(select(Snapshot.invoice_id)).scalars())


def sweep(app, tenant, limit: int | None, kind: str = "full"):  # type: ignore[no-untyped-def]
    return run_sweep(services_of(app), str(tenant.id), kind=kind, evaluate=marked_products, client_options=FAST,
                     review_limit=limit)


def keep_open(sim, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    """Leave only the n most recent open invoices open in the simulator (the rest closed); their ids."""
    data = sim.state.data
    closed = next(s for s in data["billingStatuses"].iter() if s["closedFlag"])
    keep = most_recent(sim, n)
    for iid in open_invoice_ids(sim) - set(keep):
        data["invoices"].set_fields(iid, {"status": {"id": closed["id"], "name": closed["description"]
                                                      if "description" in closed else closed.get("name", "")}})
    assert open_invoice_ids(sim) == set(keep)
    return keep


def test_a_free_sweep_reviews_the_25_most_recent_open_invoices_and_says_so(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim, name="Free Review Co")
    free(app, t)
    total = len(open_invoice_ids(sim))
    result = sweep(app, t, 25)
    assert result.outcome == "ok" and result.kind == "full"
    ranked = most_recent(sim, 26)
    assert snapshot_ids(app, t) == set(ranked[:25])  # the 25 most recent, by date then id
    assert ranked[25] not in snapshot_ids(app, t)  # the 26th is not read
    assert result.invoices_seen == total
    assert result.reason == (f"Plan limit: 25 of {total} open invoices reviewed (the most recent); "
                             f"the other {total - 25} were not read.")
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        record = s.execute(select(Sweep)).scalar_one()
        assert record.reason == result.reason and record.invoices_seen == total
    page = client.get("/review/").get_data(as_text=True)
    assert f"Free plan: 25 of {total:,} open invoices reviewed." in page
    assert '<a href="/settings/billing/">Upgrade to review all.</a>' in page


def test_an_incremental_sweep_under_a_limit_is_full(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim, name="Free Incremental Co")
    free(app, t)
    assert sweep(app, t, 25).outcome == "ok"
    again = sweep(app, t, 25, kind="incremental")
    assert again.kind == "full" and snapshot_ids(app, t) == set(most_recent(sim, 25))


@pytest.mark.parametrize("status", ["comped", "active"])
def test_comped_and_active_review_every_open_invoice(request, app, client, make_tenant, sim, status: str):
    rebuild_afterwards(request, sim)
    keep_open(sim, 30)
    t = connected_tenant(client, make_tenant, sim, name="Pro Review Co")
    set_billing(app, t, plan="pro", status=status)
    from app.billing.limits import review_limit_now
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        limit = review_limit_now(s)
    assert limit is None
    result = sweep(app, t, limit)
    assert result.reason is None and len(snapshot_ids(app, t)) == 30
    assert "open invoices reviewed" not in client.get("/review/").get_data(as_text=True)


def decide(client, invoice_id: int):  # type: ignore[no-untyped-def]
    return client.post(f"/review/{invoice_id}/approve", data={"confirm": "1"}, headers=htmx(client))


def test_a_downgrade_keeps_every_reviewed_invoice_read_only_beyond_25(request, app, client, make_tenant, sim):
    rebuild_afterwards(request, sim)
    keep = keep_open(sim, 40)
    t = connected_tenant(client, make_tenant, sim, name="Downgrade Co")
    assert sweep(app, t, None).outcome == "ok"  # Pro (comped): all 40 reviewed
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        flags_before = s.execute(select(func.count()).select_from(Flag)).scalar_one()
        rows_before = s.execute(select(func.count()).select_from(ReviewInvoice)).scalar_one()
    assert snapshot_ids(app, t) == set(keep) and rows_before == 40
    free(app, t)
    newest, oldest = keep[:25], keep[25:]
    refused = decide(client, oldest[0])
    assert refused.status_code == 409 and "read-only" in refused.get_data(as_text=True)
    edit = client.get(f"/review/{oldest[0]}/lines/product/1/quantity/edit", headers=htmx(client))
    assert edit.status_code == 409
    page = client.get(f"/review/{oldest[0]}").get_data(as_text=True)
    assert page.count('id="read-only"') == 1 and "review limit (25 most recent open invoices), so it is read-only" in page
    assert 'id="read-only"' not in client.get(f"/review/{newest[0]}").get_data(as_text=True)
    allowed = decide(client, newest[0])
    assert allowed.status_code == 200 and "read-only" not in allowed.get_data(as_text=True)
    inbox = client.get("/review/?tab=all").get_data(as_text=True)
    assert "Free plan: 25 of 40 open invoices reviewed." in inbox and "Read-only" in inbox
    # A Free sweep now: nothing is deleted, the 15 older ones keep their snapshot, flags and inbox row.
    result = sweep(app, t, 25)
    assert result.outcome == "ok" and result.snapshots_dropped == 0
    assert result.reason is not None and result.reason.startswith("Plan limit: 25 of 40 open invoices reviewed")
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        assert s.execute(select(func.count()).select_from(Flag)).scalar_one() >= flags_before
        assert s.execute(select(func.count()).select_from(ReviewInvoice).where(ReviewInvoice.is_open)).scalar_one() == 40
    assert snapshot_ids(app, t) == set(keep)
    assert decide(client, oldest[-1]).status_code == 409


def test_an_ended_trial_reviews_like_free(app, client, make_tenant, sim):
    from app.billing.limits import review_limit_now

    t = connected_tenant(client, make_tenant, sim, name="Trial Co")
    set_billing(app, t, plan="pro", status="trialing", trial_ends_at=NOW + DAY)
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        assert review_limit_now(s) is None
    set_billing(app, t, trial_ends_at=NOW - dt.timedelta(minutes=1))
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        assert review_limit_now(s) == 25
    page = client.get("/review/").get_data(as_text=True)
    assert "Your trial has ended" in page


def test_grace_ending_tomorrow_is_pro_and_yesterday_is_free(app, client, make_tenant):
    from app.billing.limits import seat_limit_now

    t = make_tenant()
    add_users(app, t, 3)
    set_billing(app, t, plan="pro", status="past_due", payment_failed_at=NOW - 6 * DAY, grace_ends_at=NOW + DAY)
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        assert seat_limit_now(s) is None
    sign_in(client, t)
    assert post_add(client, f"fifth{AT}x.example").status_code == 302
    set_billing(app, t, payment_failed_at=NOW - 8 * DAY, grace_ends_at=NOW - DAY)
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        assert seat_limit_now(s) == 3
    assert post_add(client, f"sixth{AT}x.example").status_code == 422
    assert "the grace period has ended" in client.get("/settings/users/").get_data(as_text=True)


# --- shown where they bite -------------------------------------------------------------------------------------


def test_the_dashboard_says_the_plan_in_one_line_on_free_and_in_a_trial_only(app, client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    assert 'id="dash-plan"' not in client.get("/").get_data(as_text=True)  # comped: nothing to say
    free(app, t)
    page = " ".join(client.get("/").get_data(as_text=True).split())
    assert "Free plan: 1 of 3 users with access · up to 25 open invoices reviewed per sweep." in page
    set_billing(app, t, status="trialing", trial_ends_at=NOW + 10 * DAY + dt.timedelta(hours=1))
    page = " ".join(client.get("/").get_data(as_text=True).split())
    assert "Pro trial: 11 days left." in page and 'id="plan-banner"' not in page
    set_billing(app, t, trial_ends_at=NOW + 2 * DAY - dt.timedelta(hours=1))
    page = " ".join(client.get("/").get_data(as_text=True).split())
    assert "Your trial ends in 2 days." in page and "Pro trial: 2 days left." in page


def test_the_periodic_member_sync_queues_each_tenant_with_its_seat_limit(app, client, make_tenant, redis_conn, sim):
    from app.billing.jobs import sync_members_all_tenants
    from app.jobs.queue import get_queue
    from app.jobs.schedule import PERIODIC

    assert PERIODIC["member_sync"][0] == "app.billing.jobs.sync_members_all_tenants"
    on_free = connected_tenant(client, make_tenant, sim, name="Free Sync Co")
    free(app, on_free)
    on_pro = connected_tenant(client, make_tenant, sim, name="Pro Sync Co")
    redis_conn.flushdb()
    with app.app_context():
        sync_members_all_tenants()
    queued = {job.args[0]: list(job.args[1:]) for job in get_queue(redis_conn, "connectwise").get_jobs()}
    assert queued[str(on_free.id)] == [3] and queued[str(on_pro.id)] == []  # comped: no limit passed
