"""Connection settings (admins only, encrypted, audited without secrets), test connection, member sync."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from app.audit.models import AuditEntry
from app.connectwise.errors import ConnectWiseError
from app.connectwise.members import run_sync
from app.connectwise.models import Connection, MemberSync
from app.tenancy import tenant_session
from app.users.models import User
from tests.conftest import csrf_of, sign_in


def _save(client, sim, **overrides):  # type: ignore[no-untyped-def]
    data = {"site": sim.url, "company_id": sim.company_id, "public_key": sim.public_key,
            "private_key": sim.private_key, "csrf_token": csrf_of(client), **overrides}
    return client.post("/settings/connectwise/", data=data)


def _connected(app, client, make_tenant, sim):  # type: ignore[no-untyped-def]
    t = make_tenant()
    sign_in(client, t)
    assert _save(client, sim).status_code == 302
    return t


def test_saving_stores_keys_encrypted_and_audits_without_secrets(app, client, make_tenant, fresh_sim, owner_engine):
    t = _connected(app, client, make_tenant, fresh_sim)
    with owner_engine.begin() as conn:
        conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(t.id)})
        raw = conn.execute(text("select public_key_enc, private_key_enc from connectwise_connections")).one()
        audit = conn.execute(text("select before, after, action from audit_log where action like 'connectwise.%'")).all()
    assert fresh_sim.private_key.encode() not in raw[1] and fresh_sim.public_key.encode() not in raw[0]
    assert audit and audit[0][2] == "connectwise.connected"
    assert fresh_sim.private_key not in str(audit) and fresh_sim.public_key not in str(audit)
    page = client.get("/settings/connectwise/").get_data(as_text=True)
    assert fresh_sim.private_key not in page
    assert "Leave empty to keep it" in page


def test_an_empty_private_key_keeps_the_stored_one(app, client, make_tenant, fresh_sim):
    t = _connected(app, client, make_tenant, fresh_sim)
    assert _save(client, fresh_sim, private_key="").status_code == 302
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        conn = session.execute(select(Connection)).scalar_one()
        from app.connectwise.connection import credentials

        assert credentials(conn, app.extensions["keyring"]).private_key == fresh_sim.private_key


@pytest.mark.parametrize("field,value,message", [
    ("site", "http://cw.example.com", "HTTPS"),
    ("site", "", "Enter your ConnectWise site"),
    ("company_id", "acme corp; drop", "company id"),
    ("public_key", "", "public key"),
])
def test_bad_input_answers_422_with_the_form_and_a_message(client, make_tenant, fresh_sim, field, value, message):
    sign_in(client, make_tenant())
    response = _save(client, fresh_sim, **{field: value})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and 'aria-invalid="true"' in html
    assert fresh_sim.private_key not in html


def test_only_admins_and_owners_reach_the_connection_settings(app, client, make_tenant, fresh_sim):
    t = make_tenant()
    viewer_id = uuid.uuid4()
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        session.add(User(id=viewer_id, tenant_id=t.id, email=f"v-{viewer_id.hex[:6]}@example.com", role="viewer"))
    sign_in(client, t, viewer_id)
    assert client.get("/settings/connectwise/").status_code == 403
    assert _save(client, fresh_sim).status_code == 403


def test_test_connection_reports_each_module(app, client, make_tenant, fresh_sim):
    _connected(app, client, make_tenant, fresh_sim)
    response = client.post("/settings/connectwise/test", headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for label in ("API keys", "Invoices", "Products", "Time entries", "Members"):
        assert label in html
    assert "Missing" not in html


def test_test_connection_with_revoked_keys_says_so(app, client, make_tenant, fresh_sim):
    _connected(app, client, make_tenant, fresh_sim)
    fresh_sim.configure(revoked=True)
    html = client.post("/settings/connectwise/test",
                       headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client)}).get_data(as_text=True)
    assert "refused the API keys" in html and "Missing" in html


def test_member_sync_creates_viewers_and_inactive_members_cannot_sign_in(app, client, make_tenant, fresh_sim):
    t = _connected(app, client, make_tenant, fresh_sim)
    with app.app_context():
        outcome = run_sync(str(t.id))
    assert outcome.created > 5
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        users = session.execute(select(User)).scalars().all()
        synced = [u for u in users if u.cw_member_id is not None]
        assert synced and all(u.role == "viewer" for u in synced)
        assert all(u.active for u in synced)
        member = synced[0]
    other = app.test_client()
    sign_in(other, t, member.id)
    assert other.get("/").status_code == 200
    # The member turns inactive in ConnectWise; the next sync ends their sessions and stops their sign-in.
    fresh_sim.state.data["members"].set_fields(member.cw_member_id, {"inactiveFlag": True})
    with app.app_context():
        assert run_sync(str(t.id)).deactivated == 1
    assert app.extensions["redis"].scard(f"bi:user-sess:{t.id}:{member.id}") == 0
    assert other.get("/").status_code == 302  # back to sign-in
    from tests.integration.signin_helpers import ask_for_code, outbox

    app.extensions["redis"].delete("bi:dev-outbox")
    ask_for_code(app, app.test_client(), member.email)
    assert outbox(app) == []  # no code for an inactive member


@pytest.mark.parametrize("fault", [
    {"error_rate": 1.0, "error_status": 503},
    {"malformed_next": 50},
    {"revoked": True},
])
def test_a_failed_sync_changes_nothing_and_shows_the_reason(app, client, make_tenant, fresh_sim, fault):
    t = _connected(app, client, make_tenant, fresh_sim)
    with app.app_context():
        run_sync(str(t.id))
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        before = sorted((u.email, u.active) for u in session.execute(select(User)).scalars())
    fresh_sim.configure(**fault)
    with app.app_context():
        with pytest.raises(ConnectWiseError):
            run_sync(str(t.id))
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        after = sorted((u.email, u.active) for u in session.execute(select(User)).scalars())
        state = session.get(MemberSync, t.id)
        assert state.status == "failed" and state.error
    assert before == after
    html = client.get("/settings/connectwise/members/status").get_data(as_text=True)
    assert "Failed" in html and "Nothing was changed" in html
    assert client.get("/").status_code == 200  # the web pages keep working


def test_sync_now_queues_a_job_and_the_page_polls_until_it_finishes(app, client, make_tenant, fresh_sim, redis_conn):
    from rq import SimpleWorker

    from app.jobs.queue import get_queue

    t = _connected(app, client, make_tenant, fresh_sim)
    response = client.post("/settings/connectwise/members/sync",
                           headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'hx-trigger="every 1s"' in html
    queue = get_queue(redis_conn, "connectwise")
    job = queue.jobs[0]
    assert list(job.args) == [str(t.id)]  # ids only, tenant first
    with app.app_context():
        SimpleWorker([queue], connection=redis_conn, serializer=queue.serializer).work(burst=True)
    html = client.get("/settings/connectwise/members/status").get_data(as_text=True)
    assert "Synced" in html and "every 1s" not in html
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        actions = session.execute(select(AuditEntry.action)).scalars().all()
    assert "connectwise.members_synced" in actions


def test_connect_cli_stores_and_tests(app, make_tenant, fresh_sim):
    t = make_tenant()
    result = app.test_cli_runner().invoke(args=[
        "connectwise", "connect", str(t.id), "--site", fresh_sim.url, "--company", fresh_sim.company_id,
        "--public-key", fresh_sim.public_key, "--private-key", fresh_sim.private_key])
    assert result.exit_code == 0, result.output
    assert "ok   API keys" in result.output
    result = app.test_cli_runner().invoke(args=["connectwise", "sync-members", str(t.id)])
    assert result.exit_code == 0 and "members synced" in result.output
