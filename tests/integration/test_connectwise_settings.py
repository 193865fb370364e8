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
    # New members get no access by default (test_member_sync_safety); here the owner chose viewer for them.
    assert client.post("/settings/users/new-members", data={"new_member_role": "viewer",
                                                            "csrf_token": csrf_of(client)}).status_code == 302
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


HX = {"HX-Request": "true"}


def _hx_save(client, sim, **overrides):  # type: ignore[no-untyped-def]
    data = {"site": sim.url, "company_id": sim.company_id, "public_key": sim.public_key,
            "private_key": "", **overrides}
    return client.post("/settings/connectwise/", data=data, headers={**HX, "X-CSRF-Token": csrf_of(client)})


def _hx_test(client) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/settings/connectwise/test", headers={**HX, "X-CSRF-Token": csrf_of(client)})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _stored_report(app, t):  # type: ignore[no-untyped-def]
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        conn = session.execute(select(Connection)).scalar_one()
        return conn.last_test_ok, conn.last_test_at, conn.last_test_report


def _test_slot(html: str) -> str:
    """The out-of-band test report a save answered with."""
    assert 'id="test-report" hx-swap-oob="true"' in html
    return html.split('id="test-report" hx-swap-oob="true"', 1)[1].split("</div>", 1)[0]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_a_save_says_so_in_a_toast_and_keeps_a_report_it_did_not_outdate(app, client, make_tenant, fresh_sim):
    t = _connected(app, client, make_tenant, fresh_sim)
    assert "Readable" in _hx_test(client)
    response = _hx_save(client, fresh_sim)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="cw-form"' in html
    assert 'id="toasts" hx-swap-oob="beforeend"' in html and "ConnectWise connection saved" in html
    assert "Readable" in _test_slot(html)  # nothing changed: the report still speaks for these settings
    assert _stored_report(app, t)[2] is not None
    assert fresh_sim.private_key not in html


def test_a_save_that_changes_the_keys_drops_the_old_test_report_everywhere(app, client, make_tenant, fresh_sim):
    t = _connected(app, client, make_tenant, fresh_sim)
    _hx_test(client)
    assert _stored_report(app, t)[0] is True
    html = _hx_save(client, fresh_sim, public_key="another-public-key").get_data(as_text=True)
    assert "ConnectWise connection saved" in html
    assert "Readable" not in _test_slot(html) and "checks" not in _test_slot(html)
    assert _stored_report(app, t) == (None, None, None)
    assert "Readable" not in client.get("/settings/connectwise/").get_data(as_text=True)
    # A new private key, even for the same site, outdates it too.
    _hx_save(client, fresh_sim)
    _hx_test(client)
    assert _stored_report(app, t)[2] is not None
    _hx_save(client, fresh_sim, private_key="a-new-private-key")
    assert _stored_report(app, t) == (None, None, None)


def test_the_first_save_by_htmx_reloads_the_page_with_a_toast(app, client, make_tenant, fresh_sim):
    sign_in(client, make_tenant())
    response = _hx_save(client, fresh_sim, private_key=fresh_sim.private_key)
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/settings/connectwise/"
    page = client.get("/settings/connectwise/").get_data(as_text=True)
    assert "ConnectWise connection saved" in page.split('id="toasts"', 1)[1] and "Test connection" in page


def test_a_refused_port_is_reported_as_unreachable_not_as_missing_api_keys(app, client, make_tenant, fresh_sim):
    _connected(app, client, make_tenant, fresh_sim)
    port = _closed_port()
    saved = _hx_save(client, fresh_sim, site=f"http://127.0.0.1:{port}", private_key=fresh_sim.private_key)
    assert saved.status_code == 200
    html = _hx_test(client)
    assert f"Could not reach 127.0.0.1:{port}: the connection was refused" in html
    assert "Unreachable" in html and "Missing" not in html and "API keys" not in html


def test_a_stopped_connectwise_is_reported_as_unreachable(app, client, make_tenant):
    """The API base is known already (cached), so the keys check itself meets the dead host."""
    import cwsim

    sim = cwsim.serve_in_thread(port=0, invoices=5)
    try:
        t = make_tenant()
        sign_in(client, t)
        _hx_save(client, sim, private_key=sim.private_key)
        assert "Readable" in _hx_test(client)
        host = sim.url.split("://", 1)[1]
    finally:
        sim.stop()
    html = _hx_test(client)
    assert f"Could not reach {host}: the connection was refused" in html
    assert "Unreachable" in html and "Missing" not in html and "API keys" not in html
    assert _stored_report(app, t)[0] is False


def test_a_name_gone_from_dns_is_reported_as_unreachable(app, client, make_tenant, fresh_sim, monkeypatch):
    import dataclasses

    from app.connectwise.sites import NameNotFound
    from app.services import EXTENSION, services_of

    def no_such_name(host: str, port: int) -> list[str]:
        raise NameNotFound(f"Could not find {host} in DNS; check the spelling")

    monkeypatch.setitem(app.extensions, EXTENSION,
                        dataclasses.replace(services_of(app), connectwise_resolver=no_such_name))
    sign_in(client, make_tenant())
    # A cloud site is saved by its name alone; only connecting looks it up.
    assert _save(client, fresh_sim, site="gone.myconnectwise.net").status_code == 302
    html = _hx_test(client)
    assert "Could not reach gone.myconnectwise.net: its name is not in DNS" in html
    assert "Unreachable" in html and "Missing" not in html


def test_a_key_without_a_permission_is_missing_that_permission_only(app, client, make_tenant, fresh_sim):
    _connected(app, client, make_tenant, fresh_sim)
    fresh_sim.configure(forbidden="time/entries")
    html = _hx_test(client)
    lines = html.split("<li>")[1:]
    missing = [line for line in lines if "Missing" in line]
    assert len(missing) == 1 and "Time entries" in missing[0] and "Time &amp; Expense › Time Entry" in missing[0]
    assert "Unreachable" not in html and "Accepted" in html
