"""Server-side sessions: only a random id in the cookie, flags, expiry, sign-out, seeing and ending sessions."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from app.security.server_sessions import PREFIX, _digest
from tests.conftest import csrf_of
from tests.integration.signin_helpers import session_cookie, sign_in_with_code


@pytest.fixture(autouse=True)
def _clean(redis_conn):  # type: ignore[no-untyped-def]
    return redis_conn


def _record(redis_conn, client) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(redis_conn.get(PREFIX + _digest(session_cookie(client))))


def _set_record(redis_conn, client, **changes) -> None:  # type: ignore[no-untyped-def]
    key = PREFIX + _digest(session_cookie(client))
    record = json.loads(redis_conn.get(key))
    record.update(changes)
    redis_conn.set(key, json.dumps(record), keepttl=True)


def test_the_cookie_holds_only_a_random_id_with_safe_flags(app, client, make_tenant, redis_conn):
    t = make_tenant()
    response = sign_in_with_code(app, client, t.owner_email)
    header = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("bi_session=")][-1]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    sid = session_cookie(client)
    assert len(sid) >= 43  # 32 random bytes, url-safe base64: 256 bits
    assert str(t.owner_id) not in sid and t.owner_email not in sid
    assert redis_conn.get(PREFIX + sid) is None  # stored under a hash of the id, never the id itself
    record = _record(redis_conn, client)
    assert record["u"] == f"{t.id}:{t.owner_id}"


def test_production_cookies_are_secure_and_host_prefixed(config, make_tenant):
    from app import create_app

    prod = create_app(replace(config, APP_ENV="production", BASE_URL="https://bi.example",
                              MAILGUN_API_KEY="k" * 20, MAILGUN_DOMAIN="mg.bi.example",
                              MAILGUN_WEBHOOK_SIGNING_KEY="w" * 32, STRIPE_SECRET_KEY="sk_live_" + "s" * 24,
                              STRIPE_WEBHOOK_SECRET="whsec_" + "h" * 32, STRIPE_PRICE_PRO_MONTHLY="price_m",
                              STRIPE_PRICE_PRO_YEARLY="price_y"))
    try:
        c = prod.test_client()
        response = c.post("/sign-in", base_url="https://bi.example",
                          data={"email": "nobody" + chr(64) + "example.com", "csrf_token": "x"})
        header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("__Host-bi_session="))
        assert "Secure" in header and "HttpOnly" in header and "Domain" not in header and "Path=/" in header
    finally:
        prod.extensions["engine"].dispose()


def test_a_cookie_from_before_sign_out_no_longer_works(app, client, make_tenant):
    t = make_tenant()
    sign_in_with_code(app, client, t.owner_email)
    stolen = session_cookie(client)
    client.post("/sign-out", data={"csrf_token": csrf_of(client)})
    thief = app.test_client()
    thief.set_cookie("bi_session", stolen)
    assert thief.get("/").status_code == 302  # to sign-in


def test_an_idle_session_ends_after_thirty_minutes(app, client, make_tenant, redis_conn):
    t = make_tenant()
    sign_in_with_code(app, client, t.owner_email)
    _set_record(redis_conn, client, s=time.time() - 29 * 60)
    assert client.get("/").status_code == 200  # still within the idle window, and this use refreshes it
    _set_record(redis_conn, client, s=time.time() - 31 * 60)
    assert client.get("/").status_code == 302


def test_a_session_ends_twelve_hours_after_sign_in_however_busy(app, client, make_tenant, redis_conn):
    t = make_tenant()
    sign_in_with_code(app, client, t.owner_email)
    _set_record(redis_conn, client, c=time.time() - 12 * 3600 - 5)
    assert client.get("/").status_code == 302


def test_the_idle_window_is_the_redis_ttl(app, client, make_tenant, redis_conn):
    t = make_tenant()
    sign_in_with_code(app, client, t.owner_email)
    ttl = redis_conn.ttl(PREFIX + _digest(session_cookie(client)))
    assert 29 * 60 < ttl <= 30 * 60


def test_a_user_sees_their_sessions_and_ends_the_others(app, make_tenant):
    t = make_tenant()
    laptop, phone = app.test_client(), app.test_client()
    sign_in_with_code(app, laptop, t.owner_email)
    sign_in_with_code(app, phone, t.owner_email)
    page = laptop.get("/account/sessions").get_data(as_text=True)
    assert page.count("<tr>") - 1 == 2 and "This browser" in page
    laptop.post("/account/sessions/end", data={"session": "others", "csrf_token": csrf_of(laptop)})
    assert phone.get("/").status_code == 302
    assert laptop.get("/").status_code == 200


def test_an_expired_session_during_an_htmx_request_redirects_back_to_the_page(app, client, make_tenant):
    response = client.get("/settings/connectwise/members/status",
                          headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/settings/audit-log/?q=x"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/sign-in?next=/settings/audit-log/?q%3Dx"


def test_an_htmx_redirect_never_points_off_site(client):
    response = client.get("/settings/connectwise/members/status",
                          headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example//evil.example/x"})
    assert response.headers["HX-Redirect"] == "/sign-in"
