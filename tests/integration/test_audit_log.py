"""The audit log: append-only even for the owner, redacted, hash-chained, 90-day retention, verify."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.audit.log import REDACTED, Actor, Origin, changes, record
from app.audit.models import AuditEntry
from app.audit.retention import purge_expired_rows
from app.audit.verify import verify_tenant
from app.tenancy import tenant_session


def _write(app, tenant_id, n=1, **kwargs):  # type: ignore[no-untyped-def]
    ids = []
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        for i in range(n):
            ids.append(record(session, tenant_id, Actor.system(), f"test.action{i}", **kwargs).id)
    return ids


def test_rows_carry_actor_action_target_changes_ip_agent_and_request_id(app, make_tenant):
    t = make_tenant()
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        entry = record(session, t.id, Actor.user(t.owner_id, t.owner_email), "settings.changed",
                       target_type="tenant_settings", target_id=t.id, before={"timezone": "UTC"},
                       after={"timezone": "Europe/Paris"}, origin=Origin("203.0.113.9", "Firefox", "req-12345678"))
        entry_id = entry.id
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        row = session.get(AuditEntry, entry_id)
        assert (row.actor_type, row.actor_id, row.actor_label) == ("user", str(t.owner_id), t.owner_email)
        assert (row.action, row.target_type, row.target_id) == ("settings.changed", "tenant_settings", str(t.id))
        assert row.before == {"timezone": "UTC"} and row.after == {"timezone": "Europe/Paris"}
        assert (row.source_ip, row.user_agent, row.request_id) == ("203.0.113.9", "Firefox", "req-12345678")
        assert row.created_at.tzinfo is not None


def test_secrets_are_redacted_in_before_and_after(app, make_tenant):
    t = make_tenant()
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        entry = record(session, t.id, Actor.system(), "connectwise.connected",
                       before={"private_key": "OLD-PRIVATE", "site": "a"},
                       after={"private_key": "NEW-PRIVATE", "public_key": "PUB", "nested": {"api_key": "K"},
                              "site": "b"})
        row_id = entry.id
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        row = session.get(AuditEntry, row_id)
        assert row.after == {"private_key": REDACTED, "public_key": REDACTED, "nested": {"api_key": REDACTED},
                             "site": "b"}
        assert "OLD-PRIVATE" not in str(row.before)


def test_changes_keeps_only_what_differs():
    assert changes({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == ({"b": 2, "c": None}, {"b": 3, "c": 4})


@pytest.mark.parametrize("statement", [
    "update audit_log set action = 'tampered' where tenant_id = :t",
    "delete from audit_log where tenant_id = :t",
    "truncate audit_log",
])
def test_update_delete_and_truncate_are_refused_even_for_the_owner(app, make_tenant, owner_engine, statement):
    t = make_tenant()
    _write(app, t.id)
    with owner_engine.begin() as conn:
        conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(t.id)})
        with pytest.raises(DBAPIError) as info:
            conn.execute(text(statement), {"t": str(t.id)})
        assert "append-only" in str(info.value)


def test_the_app_role_has_no_update_or_delete_privilege_on_the_audit_log(app, make_tenant):
    t = make_tenant()
    with pytest.raises(DBAPIError) as info:
        with tenant_session(t.id, app.extensions["session_factory"]) as session:
            session.execute(text("delete from audit_log"))
    assert "permission denied" in str(info.value)


def _bare_tenant(app) -> uuid.UUID:  # type: ignore[no-untyped-def]
    """A tenant with no audit rows yet, so a test can plant backdated rows at the start of its chain."""
    from app.tenants.models import Tenant

    tid = uuid.uuid4()
    with tenant_session(tid, app.extensions["session_factory"]) as session:
        session.add(Tenant(id=tid, name="Old Timer"))
    return tid


def test_retention_removes_only_rows_older_than_90_days(app):
    tid = _bare_tenant(app)
    now = datetime.now(UTC)
    with tenant_session(tid, app.extensions["session_factory"]) as session:
        old = record(session, tid, Actor.system(), "old", now=now - timedelta(days=91)).id
        edge = record(session, tid, Actor.system(), "edge", now=now - timedelta(days=89, hours=23)).id
        new = record(session, tid, Actor.system(), "new", now=now).id
    session = app.extensions["session_factory"]()
    removed = purge_expired_rows(session)
    session.commit()
    session.close()
    assert removed >= 1
    with tenant_session(tid, app.extensions["session_factory"]) as session:
        kept = set(session.execute(select(AuditEntry.id)).scalars())
    assert old not in kept and {edge, new} <= kept


def test_the_chain_verifies_and_survives_retention_of_its_oldest_rows(app):
    tid = _bare_tenant(app)
    now = datetime.now(UTC)
    with tenant_session(tid, app.extensions["session_factory"]) as session:
        record(session, tid, Actor.system(), "old", now=now - timedelta(days=120))
        record(session, tid, Actor.system(), "older-than-90", now=now - timedelta(days=95))
        record(session, tid, Actor.system(), "recent", now=now - timedelta(days=10))
    session = app.extensions["session_factory"]()
    purge_expired_rows(session)
    session.commit()
    session.close()
    _write(app, tid, 3)
    with tenant_session(tid, app.extensions["session_factory"]) as session:
        checked, brk = verify_tenant(session, tid)
        actions = session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions[0] == "recent"
    assert brk is None and checked == 4


def test_audit_verify_finds_a_planted_break(app, make_tenant, owner_engine):
    t = make_tenant()
    ids = _write(app, t.id, 4)
    # Plant a break the way an attacker with raw access would: bypass the trigger as the owner.
    with owner_engine.begin() as conn:
        conn.execute(text("alter table audit_log disable trigger audit_log_append_only"))
        conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(t.id)})
        conn.execute(text("update audit_log set action = 'forged' where id = :id"), {"id": ids[2]})
        conn.execute(text("alter table audit_log enable trigger audit_log_append_only"))
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        _checked, brk = verify_tenant(session, t.id)
    assert brk is not None and brk.entry_id == ids[2] and "hash" in brk.reason

    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"audit row {ids[2]}" in result.output


def test_concurrent_writers_do_not_fork_the_chain(app, make_tenant):
    t = make_tenant()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            _write(app, t.id, 5)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        checked, brk = verify_tenant(session, t.id)
        prevs = session.execute(select(AuditEntry.prev_hash)).scalars().all()
    assert brk is None and checked == 21
    assert len(prevs) == len(set(prevs)), "two rows point at the same predecessor: the chain forked"


def test_audit_verify_command_reports_ok_for_intact_chains(app, make_tenant):
    t = make_tenant()
    _write(app, t.id, 2)
    # Other tests plant breaks in their own tenants; check this tenant's chain directly through the CLI helpers.
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        assert verify_tenant(session, t.id) == (3, None)
    assert uuid.UUID(str(t.id))


# The page: sentences, invoice numbers, filters, paging.

def _page(client, **args):  # type: ignore[no-untyped-def]
    return client.get("/settings/audit-log/", query_string=args)


def _owner(t):  # type: ignore[no-untyped-def]
    return Actor.user(t.owner_id, t.owner_email)


def test_the_page_reads_as_sentences_naming_people_and_invoices_by_number(app, client, make_tenant):
    from tests.conftest import sign_in

    t = make_tenant()
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        record(s, t.id, _owner(t), "branding.saved", target_type="branding", target_id=t.id,
               before={"brand_colour": "#1D4ED8"}, after={"brand_colour": "#0F766E"})
        record(s, t.id, _owner(t), "review.approved", target_type="invoice", target_id=4242,
               after={"invoice_number": "10234", "state": "approved"})
        record(s, t.id, _owner(t), "invoices.public_link_created", target_type="public_link",
               target_id=uuid.uuid4(), after={"invoice_id": 9876})
        record(s, t.id, Actor.system("connectwise member sync"), "connectwise.members_synced",
               target_type="users", after={"members": 5, "created": 3, "updated": 0, "deactivated": 0,
                                           "proposed": 0})
        record(s, t.id, _owner(t), "review.brand_new_thing", target_type="invoice", target_id=4242,
               after={"invoice_number": "10234", "note": "<b>x</b>"})
    sign_in(client, t)
    html = _page(client).get_data(as_text=True)
    assert "Olive Owner changed the brand colour from #1D4ED8 to #0F766E" in html
    assert "Olive Owner approved invoice 10234" in html
    assert "Olive Owner created a public link for invoice #9876" in html
    assert "Member sync added 3 users" in html
    assert "Olive Owner did review brand new thing on invoice 10234" in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<table" not in html.split("<main", 1)[1]


def test_an_invoice_named_only_by_id_takes_its_number_from_our_own_tables(app, client, make_tenant):
    from app.sending.models import InvoiceSend
    from tests.conftest import sign_in

    t = make_tenant()
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        s.add(InvoiceSend(tenant_id=t.id, invoice_id=555, invoice_number="INV-555", kind="invoice",
                          status="sent"))  # no recipients needed: a real ciphertext or none, never bytes
        s.flush()
        record(s, t.id, _owner(t), "invoices.public_link_revoked", target_type="public_link", target_id="l1",
               before={"status": "active"}, after={"status": "revoked", "invoice_id": 555})
    sign_in(client, t)
    assert "Olive Owner revoked a public link for invoice INV-555" in _page(client).get_data(as_text=True)


def test_the_log_filters_by_person_action_and_date_range(app, client, make_tenant):
    from app.users.models import User
    from tests.conftest import sign_in

    t = make_tenant()
    bob = uuid.uuid4()
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        s.add(User(id=bob, tenant_id=t.id, email="bob@acme.example", name="Bob Biller", role="admin", active=True))
        s.flush()
        for day, actor, action in ((3, _owner(t), "review.approved"), (10, Actor.user(bob, "bob@acme.example"),
                                   "review.rejected"), (20, Actor.user(bob, "bob@acme.example"), "review.approved")):
            record(s, t.id, actor, action, target_type="invoice", target_id=day,
                   after={"invoice_number": f"N-{day}"}, now=datetime(2098, 5, day, 12, tzinfo=UTC))
    sign_in(client, t)
    everything = _page(client).get_data(as_text=True)
    assert all(f"N-{d}" in everything for d in (3, 10, 20))
    assert '<option value="user:' + str(bob) + '"' in everything and ">Bob Biller</option>" in everything
    by_bob = _page(client, person=f"user:{bob}").get_data(as_text=True)
    assert "N-10" in by_bob and "N-20" in by_bob and "N-3<" not in by_bob and "invoice N-3" not in by_bob
    approvals = _page(client, action="review.approved").get_data(as_text=True)
    assert "invoice N-3" in approvals and "invoice N-20" in approvals and "invoice N-10" not in approvals
    window = _page(client, **{"from": "2098-05-04", "to": "2098-05-10"}).get_data(as_text=True)
    assert "invoice N-10" in window and "invoice N-3" not in window and "invoice N-20" not in window
    both = _page(client, person=f"user:{bob}", action="review.approved").get_data(as_text=True)
    assert "invoice N-20" in both and "invoice N-10" not in both
    nothing = _page(client, action="review.closed")
    assert nothing.status_code == 200 and "Nothing matches" in nothing.get_data(as_text=True)


def test_a_date_filter_in_the_workspace_zone_counts_its_calendar_days(app, client, make_tenant):
    from app.tenants.models import TenantSettings
    from tests.conftest import sign_in

    t = make_tenant()
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        s.get(TenantSettings, t.id).timezone = "Asia/Tokyo"
        # 23:30 UTC on 1 June is 08:30 on 2 June in Tokyo.
        record(s, t.id, _owner(t), "review.approved", target_type="invoice", target_id=1,
               after={"invoice_number": "LATE-UTC"}, now=datetime(2098, 6, 1, 23, 30, tzinfo=UTC))
    sign_in(client, t)
    assert "LATE-UTC" in _page(client, **{"from": "2098-06-02", "to": "2098-06-02"}).get_data(as_text=True)
    assert "LATE-UTC" not in _page(client, **{"from": "2098-06-01", "to": "2098-06-01"}).get_data(as_text=True)


@pytest.mark.parametrize("args", [{"from": "yesterday"}, {"to": "2098-13-40"}, {"from": "2098-02-02", "to": "2098-02-01"}])
def test_a_bad_date_filter_answers_422_with_a_message_not_a_500(app, client, make_tenant, args):
    from tests.conftest import sign_in

    t = make_tenant()
    sign_in(client, t)
    response = _page(client, **args)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'class="form-alert" role="alert"' in html and ("is not a date" in html or "after the To date" in html)


def test_the_log_pages_fifty_at_a_time_and_the_next_page_keeps_the_filters(app, client, make_tenant):
    from tests.conftest import sign_in

    t = make_tenant()
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        for i in range(120):
            record(s, t.id, _owner(t), "review.approved" if i % 2 else "review.rejected", target_type="invoice",
                   target_id=i, after={"invoice_number": f"P{i:03d}"})
    sign_in(client, t)
    first = _page(client).get_data(as_text=True)
    assert first.count('class="audit-entry"') == 50 and "P119" in first and "P070" in first and "P069" not in first
    filtered = _page(client, action="review.approved").get_data(as_text=True)
    assert filtered.count('class="audit-entry"') == 50 and "P119" in filtered and "P021" in filtered
    [link] = re.findall(r'hx-get="([^"]+)"', filtered.split('id="audit-more"', 1)[1])[:1]
    assert "action=review.approved" in link and "before=" in link
    more = client.get(link.replace("&amp;", "&"), headers={"HX-Request": "true"})
    html = more.get_data(as_text=True)
    assert more.status_code == 200 and "<html" not in html
    assert html.count('class="audit-entry"') == 10 and "P019" in html and "P001" in html and "P018" not in html
    assert "data-focus-after-swap" in html.split('class="audit-entry"', 2)[1] and 'id="audit-more"' not in html
