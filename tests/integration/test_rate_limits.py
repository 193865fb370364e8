"""Rate limits on sign-in: per IP and per email for code requests, per IP and per attempt for code checks, SSO
callbacks per IP; each answers 429 with Retry-After and a friendly page (or an htmx message)."""

from __future__ import annotations

import pytest

from app.security import limits
from tests.conftest import csrf_of
from tests.integration.signin_helpers import AT


def _limit(spec: str) -> int:
    return int(spec.split(";")[0].split("/")[0])


def _ask(client, email: str, ip: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    return client.post("/sign-in", data={"email": email, "csrf_token": csrf_of(client)},
                       environ_base={"REMOTE_ADDR": ip})


def test_code_requests_are_limited_per_email_across_addresses(app):
    client = app.test_client()
    email = f"target{AT}example.com"
    allowed = _limit(limits.CODE_REQUEST_PER_EMAIL)
    for n in range(allowed):
        assert _ask(client, email, f"10.0.0.{n + 1}").status_code == 302
    refused = _ask(client, email, "10.0.1.1")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many requests" in refused.get_data(as_text=True)
    assert _ask(client, f"someone-else{AT}example.com", "10.0.1.1").status_code == 302  # other emails unaffected


def test_code_requests_are_limited_per_address_across_emails(app):
    client = app.test_client()
    allowed = _limit(limits.CODE_REQUEST_PER_IP)
    for n in range(allowed):
        assert _ask(client, f"user{n}{AT}example.com", "10.9.9.9").status_code == 302
    refused = _ask(client, f"another{AT}example.com", "10.9.9.9")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert _ask(client, f"another{AT}example.com", "10.9.9.10").status_code == 302


def test_code_checks_are_limited_per_attempt(app):
    client = app.test_client()
    _ask(client, f"checker{AT}example.com", "10.2.0.1")
    with client.session_transaction() as sess:
        attempt = sess["signin_attempt"]
    allowed = _limit(limits.CODE_CHECK_PER_ATTEMPT)
    statuses = []
    for _ in range(allowed + 1):
        with client.session_transaction() as sess:  # keep the attempt alive past the 5-try lock to reach the limit
            sess["signin_attempt"], sess["signin_email"] = attempt, f"checker{AT}example.com"
        statuses.append(client.post("/sign-in/code", data={"code": "000000", "csrf_token": csrf_of(client)},
                                    environ_base={"REMOTE_ADDR": f"10.2.1.{len(statuses) + 1}"}).status_code)
    assert 429 not in statuses[:allowed] and statuses[-1] == 429


def test_code_checks_are_limited_per_address(app):
    allowed = _limit(limits.CODE_CHECK_PER_IP)
    statuses = []
    for n in range(allowed + 1):
        client = app.test_client()
        with client.session_transaction() as sess:
            sess["signin_attempt"], sess["signin_email"] = f"attempt-{n}", f"c{n}{AT}example.com"
        statuses.append(client.post("/sign-in/code", data={"code": "000000", "csrf_token": csrf_of(client)},
                                    environ_base={"REMOTE_ADDR": "10.3.0.1"}).status_code)
    assert 429 not in statuses[:allowed] and statuses[-1] == 429


@pytest.mark.parametrize("provider", ["google", "nope"])
def test_sso_callbacks_are_limited_per_address(app, provider):
    allowed = _limit(limits.SSO_CALLBACK_PER_IP)
    client = app.test_client()
    statuses = [client.get(f"/sign-in/sso/{provider}/callback?state=x&code=y",
                           environ_base={"REMOTE_ADDR": "10.4.0.1"}).status_code for _ in range(allowed + 1)]
    assert 429 not in statuses[:allowed] and statuses[-1] == 429


def test_an_htmx_request_over_the_limit_gets_a_message_not_a_page(app):
    client = app.test_client()
    email = f"hx{AT}example.com"
    for n in range(_limit(limits.CODE_REQUEST_PER_EMAIL)):
        _ask(client, email, f"10.5.0.{n + 1}")
    refused = client.post("/sign-in", data={"email": email}, environ_base={"REMOTE_ADDR": "10.5.1.1"},
                          headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client)})
    assert refused.status_code == 429 and refused.headers["HX-Retarget"] == "#toasts"
    assert "<html" not in refused.get_data(as_text=True)
