"""Guessing emailed codes: a per-email budget of wrong codes that no new code resets, a daily cap on codes mailed,
aggregated failed-code audit rows, and known and unknown emails indistinguishable throughout."""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import event

from tests.conftest import csrf_of
from tests.integration.signin_helpers import (
    AT,
    ask_for_code,
    audit_rows,
    outbox,
    run_delayed_jobs,
    run_jobs,
    type_code,
)
from tests.integration.sso_helpers import add_user, into, sso, sso_app  # noqa: F401  (sso_app is a fixture)
from tests.oidc_fixtures import GOOGLE_ACCOUNTS

PER_HOUR, PER_DAY, MAILED_PER_DAY = 10, 20, 10
HOUR, DAY = 3600, 86400


@pytest.fixture(autouse=True)
def _clean(redis_conn):  # type: ignore[no-untyped-def]
    return redis_conn


@pytest.fixture()
def no_limits(monkeypatch):  # type: ignore[no-untyped-def]
    """The edge rate limits off, so what is measured is the per-email budget alone."""
    from app.security.limits import limiter

    monkeypatch.setattr(limiter, "enabled", False)


@pytest.fixture()
def clock(monkeypatch):  # type: ignore[no-untyped-def]
    """The lockout's clock, pinned to 01:00 UTC today and moved by the test."""
    state = {"now": (time.time() // DAY) * DAY + HOUR + 1}
    try:
        from app.auth import lockout
    except ImportError:  # before the per-email budget existed; the tests then measure the old behaviour
        return state
    monkeypatch.setattr(lockout, "_clock", lambda: state["now"])
    return state


def _mailed_codes(app, email: str) -> set[str]:  # type: ignore[no-untyped-def]
    found = set()
    for message in outbox(app):
        if message["to"] == email:
            found.update(re.findall(r"\b(\d{6})\b", message["text"]))
    return found


def _wrong(app, email: str) -> str:  # type: ignore[no-untyped-def]
    """A code that is none of the codes mailed to ``email``."""
    taken = _mailed_codes(app, email)
    return next(c for c in (f"{n:06d}" for n in range(0, 10**6, 111_111)) if c not in taken)


def _unknown() -> str:
    return f"nobody-{uuid.uuid4().hex[:8]}{AT}example.com"


def _guess(app, client, email: str) -> bool:  # type: ignore[no-untyped-def]
    """Type a wrong code; True when it was checked (the "not right" answer), False when refused unchecked."""
    response = type_code(client, _wrong(app, email))
    return response.status_code == 422 and "not right" in response.get_data(as_text=True)


def _lock(app, client, email: str) -> None:  # type: ignore[no-untyped-def]
    """Spend the hour's budget of wrong codes, four per code request."""
    checked = 0
    for _ in range(PER_HOUR):
        ask_for_code(app, client, email)
        for _ in range(4):
            if checked < PER_HOUR:
                checked += _guess(app, client, email)
    assert checked == PER_HOUR


def test_new_code_requests_never_buy_more_guesses_than_the_hourly_budget(app, no_limits, clock, make_tenant):
    t = make_tenant()
    client = app.test_client()
    checked = 0
    for _ in range(60):
        ask_for_code(app, client, t.owner_email)
        for _ in range(2):
            checked += _guess(app, client, t.owner_email)
    assert checked == PER_HOUR


def test_at_most_twenty_wrong_codes_are_checked_in_a_day_whatever_the_requests(app, no_limits, clock, make_tenant):
    t = make_tenant()
    client = app.test_client()
    per_hour = []
    for _hour in range(6):
        checked = 0
        for _ in range(10):
            ask_for_code(app, client, t.owner_email)
            for _ in range(3):
                checked += _guess(app, client, t.owner_email)
        per_hour.append(checked)
        clock["now"] += HOUR
    assert per_hour == [PER_HOUR, PER_HOUR, 0, 0, 0, 0]
    clock["now"] += DAY  # a new day, a new budget
    ask_for_code(app, client, t.owner_email)
    assert _guess(app, client, t.owner_email)


def _normal(response, email: str) -> str:  # type: ignore[no-untyped-def]
    text = response.get_data(as_text=True).replace(email, "E")
    text = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value="T"', text)
    text = re.sub(r'"X-CSRF-Token": "[^"]*"', '"X-CSRF-Token": "T"', text)
    return re.sub(r"Request [A-Za-z0-9_.:-]+", "Request R", text)


def _same(a, b, known: str, unknown: str, step: str) -> None:  # type: ignore[no-untyped-def]
    assert a.status_code == b.status_code, step
    assert sorted(a.headers.keys()) == sorted(b.headers.keys()), step
    for header in ("Location", "Content-Type", "Cache-Control", "Retry-After", "Vary", "HX-Redirect"):
        assert a.headers.get(header) == b.headers.get(header), (step, header)
    assert _normal(a, known) == _normal(b, unknown), step


def test_known_and_unknown_emails_get_identical_answers_at_every_step(app, no_limits, clock, make_tenant):
    known, unknown = make_tenant().owner_email, _unknown()
    k, u = app.test_client(), app.test_client()

    def both(step: str, act) -> None:  # type: ignore[no-untyped-def]
        _same(act(k, known), act(u, unknown), known, unknown, step)

    # Six wrong codes on the first code (past the code's own five), then three a code: well past the hour's ten.
    for n, guesses in enumerate([6, 3, 3, 3, 3, 3]):
        both(f"ask {n}", lambda c, e: c.post("/sign-in", data={"email": e, "csrf_token": csrf_of(c)}))
        run_jobs(app)
        both(f"code page {n}", lambda c, e: c.get("/sign-in/code"))
        wrong = _wrong(app, known)
        for g in range(guesses):
            both(f"guess {n}.{g}", lambda c, e: type_code(c, wrong))  # noqa: B023
            both(f"after guess {n}.{g}", lambda c, e: c.get("/sign-in"))


def _count_sql(app):  # type: ignore[no-untyped-def]
    statements: list[str] = []

    def _seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(app.extensions["engine"], "before_cursor_execute", _seen)
    return statements, lambda: event.remove(app.extensions["engine"], "before_cursor_execute", _seen)


def test_a_wrong_code_does_the_same_work_for_known_and_unknown_emails(app, make_tenant):
    known = make_tenant().owner_email
    work = {}
    for email in (known, _unknown()):
        client = app.test_client()
        ask_for_code(app, client, email)
        queued = app.extensions["redis"].zcard("rq:scheduled:default")
        data = {"code": _wrong(app, email), "csrf_token": csrf_of(client)}
        statements, stop = _count_sql(app)
        try:
            assert client.post("/sign-in/code", data=data).status_code == 422
        finally:
            stop()
        work[email] = (len(statements), app.extensions["redis"].zcard("rq:scheduled:default") - queued)
    assert work[known] == work[list(work)[1]]
    assert work[known][0] == 0, statements  # no database work at all: the audit row is a job's


def test_the_lock_survives_new_code_requests_and_refuses_even_the_right_code(app, no_limits, clock, make_tenant):
    from app.auth import codes

    t = make_tenant()
    client = app.test_client()
    _lock(app, client, t.owner_email)
    before = _mailed_codes(app, t.owner_email)
    ask_for_code(app, client, t.owner_email)
    assert _mailed_codes(app, t.owner_email) == before  # no new code while paused...
    notice = outbox(app)[0]
    assert notice["to"] == t.owner_email and "paused" in notice["text"]  # ...a note saying why instead
    with client.session_transaction() as sess:
        attempt_id = sess["signin_attempt"]
    with app.test_request_context():
        right = codes.issue_code(app.extensions["redis"], attempt_id, t.owner_email)
    response = type_code(client, right)
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"
    assert "paused" in client.get("/sign-in").get_data(as_text=True)
    assert client.get("/").status_code == 302  # not signed in
    clock["now"] += HOUR  # the cool-down is the rest of the hour
    ask_for_code(app, client, t.owner_email)
    assert _guess(app, client, t.owner_email)


def test_sso_still_signs_in_an_email_whose_codes_are_paused(sso_app, no_limits, clock, make_tenant):  # noqa: F811
    t = make_tenant()
    email = GOOGLE_ACCOUNTS["ann"]["email"].lower()
    add_user(sso_app, t, email)
    _lock(sso_app, sso_app.test_client(), email)
    client = sso_app.test_client()
    response = into(client, sso(client, "google", "ann"), t)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_failed_codes_are_audited_by_a_job_once_per_email_hour_with_their_count(app, no_limits, clock, make_tenant):
    email = f"shared-{uuid.uuid4().hex[:8]}{AT}example.com"
    a, b = make_tenant("Alpha IT", email), make_tenant("Beta IT", email)
    client = app.test_client()
    for guesses in (3, 3, 1):
        ask_for_code(app, client, email)
        for _ in range(guesses):
            assert _guess(app, client, email)
    assert audit_rows(app, a.id, "auth.code_failed") == []  # nothing written from the request
    assert run_delayed_jobs(app) == 1  # one job for the email-hour, however many failures
    for tenant in (a, b):
        [row] = audit_rows(app, tenant.id, "auth.code_failed")
        assert row.after["wrong_codes"] == 7 and email not in str(row.after)
        assert row.source_ip == "127.0.0.1" and row.after["source_ips"] == ["127.0.0.1"]
    assert run_delayed_jobs(app) == 0
    clock["now"] += HOUR
    ask_for_code(app, client, email)
    for _ in range(2):
        assert _guess(app, client, email)
    assert run_delayed_jobs(app) == 1
    assert [r.after["wrong_codes"] for r in audit_rows(app, a.id, "auth.code_failed")] == [7, 2]


def test_no_more_than_ten_codes_are_mailed_to_an_email_in_a_day(app, no_limits, clock, make_tenant):
    t = make_tenant()
    client = app.test_client()
    for _ in range(15):
        ask_for_code(app, client, t.owner_email)
        clock["now"] += 120
    assert len([m for m in outbox(app) if m["to"] == t.owner_email]) == MAILED_PER_DAY
    clock["now"] += DAY
    ask_for_code(app, client, t.owner_email)
    assert len([m for m in outbox(app) if m["to"] == t.owner_email]) == MAILED_PER_DAY + 1


class _Capture(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        import gzip

        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Capture.bodies.append(gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": 1}')

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture()
def reporting_app(config):  # type: ignore[no-untyped-def]
    """The app reporting errors to a local stand-in for PostHog's capture endpoint (the HTTP boundary)."""
    from app import create_app

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Capture.bodies.clear()
    application = create_app(replace(config, POSTHOG_API_KEY="phc_test",
                                     POSTHOG_HOST=f"http://127.0.0.1:{server.server_address[1]}"))
    yield application
    application.extensions["engine"].dispose()
    server.shutdown()


def test_reaching_the_lock_is_audited_in_every_tenant_and_reported_without_the_email(reporting_app, no_limits,
                                                                                       clock, make_tenant):
    email = f"target-{uuid.uuid4().hex[:8]}{AT}victim.example"
    a, b = make_tenant("Alpha IT", email), make_tenant("Beta IT", email)
    _lock(reporting_app, reporting_app.test_client(), email)
    run_jobs(reporting_app)
    for tenant in (a, b):
        [row] = audit_rows(reporting_app, tenant.id, "auth.code_sign_in_paused")
        assert row.after["window"] == "hour" and row.after["wrong_codes"] == PER_HOUR
    reporting_app.extensions["errors"].flush()
    payload = b"\n".join(_Capture.bodies).decode()
    assert "SignInPaused" in payload and "victim.example" in payload
    assert email not in payload and email.split(AT)[0] not in payload
