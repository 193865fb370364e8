"""Emailed one-time codes: no enumeration, single use, bound to the browser, hashed, expiring, attempt-limited."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.tenancy import tenant_session
from app.users.models import User
from tests.conftest import csrf_of
from tests.integration.signin_helpers import (
    AT,
    ask_for_code,
    latest_code,
    outbox,
    run_delayed_jobs,
    run_jobs,
    session_cookie,
    sign_in_with_code,
    type_code,
)


@pytest.fixture(autouse=True)
def _clean(redis_conn):  # type: ignore[no-untyped-def]
    return redis_conn


def _actions(app, tenant_id) -> list[str]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as s:
        return list(s.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars())


def test_known_and_unknown_emails_get_the_same_answer(app, client, make_tenant):
    t = make_tenant()
    known = client.post("/sign-in", data={"email": t.owner_email, "csrf_token": csrf_of(client)})
    other = app.test_client()
    unknown = other.post("/sign-in", data={"email": f"nobody{AT}example.com", "csrf_token": csrf_of(other)})
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"] == "/sign-in/code"
    page_known = client.get("/sign-in/code").get_data(as_text=True).replace(t.owner_email, "E")
    page_unknown = other.get("/sign-in/code").get_data(as_text=True).replace(f"nobody{AT}example.com", "E")
    strip = lambda html: "\n".join(line for line in html.splitlines() if "csrf" not in line.lower()  # noqa: E731
                                   and "Request " not in line)
    assert strip(page_known) == strip(page_unknown)
    run_jobs(app)
    assert [m["to"] for m in outbox(app)] == [t.owner_email]  # only the known email got mail


def test_a_code_signs_in_once_and_the_session_id_changes(app, client, make_tenant):
    t = make_tenant()
    ask_for_code(app, client, t.owner_email)
    before = session_cookie(client)
    code = latest_code(app, t.owner_email)
    response = type_code(client, code)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    after = session_cookie(client)
    assert before and after and before != after
    assert client.get("/").status_code == 200
    # The same browser has no attempt left to type it into:
    assert type_code(client, code).headers["Location"] == "/sign-in"


def test_a_code_is_consumed_by_its_first_use(app):
    from app.auth import codes

    redis = app.extensions["redis"]
    with app.test_request_context():
        code = codes.issue_code(redis, "attempt-1", f"ann{AT}example.com")
        assert codes.check_code(redis, "attempt-1", f"ann{AT}example.com", code) is codes.CheckResult.OK
        assert codes.check_code(redis, "attempt-1", f"ann{AT}example.com", code) is codes.CheckResult.WRONG


def test_sign_in_is_audited(app, client, make_tenant):
    t = make_tenant()
    sign_in_with_code(app, client, t.owner_email)
    assert "auth.signed_in" in _actions(app, t.id)


def test_a_code_works_only_in_the_browser_that_asked_for_it(app, client, make_tenant):
    t = make_tenant()
    ask_for_code(app, client, t.owner_email)
    code = latest_code(app, t.owner_email)
    thief = app.test_client()
    thief.post("/sign-in", data={"email": t.owner_email, "csrf_token": csrf_of(thief)})  # its own attempt, no job run
    response = type_code(thief, code)
    assert response.status_code == 422
    assert "not right" in response.get_data(as_text=True)


def test_five_wrong_tries_kill_the_code(app, client, make_tenant):
    t = make_tenant()
    ask_for_code(app, client, t.owner_email)
    code = latest_code(app, t.owner_email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert type_code(client, wrong).status_code == 422
    locked = type_code(client, wrong)
    assert locked.status_code == 302 and locked.headers["Location"] == "/sign-in"
    with client.session_transaction() as sess:  # even had the browser kept its attempt, the code is gone
        sess["signin_attempt"] = sess.get("signin_attempt") or "gone"
    run_delayed_jobs(app)  # failed codes are audited by a job, one row per email-hour (issue 9)
    assert "auth.code_failed" in _actions(app, t.id)
    client2 = app.test_client()
    ask_for_code(app, client2, t.owner_email)
    assert type_code(client2, code).status_code == 422  # the old code never comes back


def test_a_new_request_replaces_the_old_code(app, client, make_tenant):
    t = make_tenant()
    ask_for_code(app, client, t.owner_email)
    first = latest_code(app, t.owner_email)
    ask_for_code(app, client, t.owner_email)
    second = latest_code(app, t.owner_email)
    if first == second:  # one chance in a million; ask once more
        ask_for_code(app, client, t.owner_email)
        second = latest_code(app, t.owner_email)
    assert type_code(client, first).status_code == 422
    assert type_code(client, second).status_code == 302


def test_codes_are_stored_only_as_a_keyed_hash_and_expire_in_ten_minutes(app, client, make_tenant, redis_conn):
    t = make_tenant()
    ask_for_code(app, client, t.owner_email)
    code = latest_code(app, t.owner_email)
    keys = [k.decode() for k in redis_conn.scan_iter("bi:signin:*")]
    code_keys = [k for k in keys if k.startswith("bi:signin:code:")]
    assert len(code_keys) == 1
    assert t.owner_email not in code_keys[0]
    stored = json.loads(redis_conn.get(code_keys[0]))
    assert set(stored) == {"a", "h"} and len(stored["h"]) == 64 and code not in stored.values()
    for key in keys:
        if redis_conn.type(key) == b"string":
            assert code.encode() not in redis_conn.get(key).replace(stored["h"].encode(), b"")
    assert 590 <= redis_conn.ttl(code_keys[0]) <= 600
    redis_conn.pexpire(code_keys[0], 1)  # ten minutes pass
    time.sleep(0.01)
    assert type_code(client, code).status_code == 422


def test_an_inactive_user_gets_no_code(app, client, make_tenant):
    t = make_tenant()
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        s.get(User, t.owner_id).active = False
    ask_for_code(app, client, t.owner_email)
    assert outbox(app) == []


def test_the_mail_has_text_and_html_and_says_where_the_request_came_from(app, client, make_tenant):
    t = make_tenant()
    client.post("/sign-in", data={"email": t.owner_email, "csrf_token": csrf_of(client)},
                headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/130.0"})
    run_jobs(app)
    [message] = outbox(app)
    assert message["subject"] == "Your Better Invoice sign-in code"
    for part in (message["text"], message["html"]):
        assert "127.0.0.1" in part and "Chrome on Windows" in part and "10 minutes" in part
    assert "<p" in message["html"] and "<p" not in message["text"]


def test_a_malformed_email_is_refused_inline(client):
    response = client.post("/sign-in", data={"email": "not-an-email", "csrf_token": csrf_of(client)})
    assert response.status_code == 422
    assert "Enter your work email" in response.get_data(as_text=True)


def test_typing_a_code_without_asking_for_one_goes_back_to_sign_in(client):
    response = client.post("/sign-in/code", data={"code": "123456", "csrf_token": csrf_of(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"


def test_sign_in_goes_back_to_a_same_origin_next_and_never_off_site(app, make_tenant):
    t = make_tenant()
    c1 = app.test_client()
    assert sign_in_with_code(app, c1, t.owner_email, "/settings/audit-log/?page=2").headers["Location"] == \
        "/settings/audit-log/?page=2"
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        c = app.test_client()
        assert sign_in_with_code(app, c, t.owner_email, evil).headers["Location"] == "/", evil


def test_an_email_in_two_tenants_chooses_and_can_switch(app, client, make_tenant):
    email = f"shared-{time.time_ns()}{AT}example.com"
    a = make_tenant("Alpha IT", email)
    b = make_tenant("Beta IT", email)
    response = sign_in_with_code(app, client, email)
    assert response.headers["Location"] == "/sign-in/choose"
    page = client.get("/sign-in/choose").get_data(as_text=True)
    assert "Alpha IT" in page and "Beta IT" in page
    client.post("/sign-in/choose", data={"tenant_id": str(b.id), "csrf_token": csrf_of(client)})
    assert "Beta IT" in client.get("/").get_data(as_text=True)
    # Switch: a new session id, now in Alpha.
    before = session_cookie(client)
    client.post("/sign-in/choose", data={"tenant_id": str(a.id), "csrf_token": csrf_of(client)})
    assert "Alpha IT" in client.get("/").get_data(as_text=True)
    assert session_cookie(client) != before
    # A tenant the email does not belong to cannot be chosen.
    other = make_tenant("Gamma IT")
    assert client.post("/sign-in/choose", data={"tenant_id": str(other.id),
                                                 "csrf_token": csrf_of(client)}).status_code == 400
