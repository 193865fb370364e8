"""CORS allow-list: only listed origins get Access-Control-Allow-* headers, never with credentials; unsafe
requests from any other origin are refused even with a valid CSRF token."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Blueprint

from app.config import Config, ConfigError, parse_origins
from app.security.cors import policy_for
from tests.conftest import csrf_of

LISTED = "https://partner.example"
FOREIGN = "https://evil.example"
OURS = "http://127.0.0.1:5000"  # the test config's BASE_URL

probe = Blueprint("cors_probe", __name__)


@probe.route("/_cors/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def _echo():  # type: ignore[no-untyped-def]
    return "ok"


def _acao_headers(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [name for name in response.headers.keys() if name.lower().startswith("access-control-allow-")]


@pytest.fixture(scope="module")
def cors_app(config):  # type: ignore[no-untyped-def]
    from app import create_app

    application = create_app(replace(config, CORS_ALLOWED_ORIGINS=f"{LISTED}, http://LOCALHOST:8080/"))
    application.register_blueprint(probe)
    yield application
    application.extensions["engine"].dispose()


@pytest.fixture()
def cors_client(cors_app):  # type: ignore[no-untyped-def]
    return cors_app.test_client()


def _preflight(client, origin: str, method: str = "POST", path: str = "/_cors/echo"):  # type: ignore[no-untyped-def]
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": "content-type"})


def test_a_foreign_origin_preflight_gets_no_access_control_headers(cors_client, client):
    for c, path in ((cors_client, "/_cors/echo"), (cors_client, "/healthz"), (client, "/healthz")):
        response = _preflight(c, FOREIGN, path=path)
        assert _acao_headers(response) == [], (path, dict(response.headers))


def test_a_listed_origin_preflight_gets_its_origin_methods_and_headers_but_no_credentials(cors_client):
    response = _preflight(cors_client, LISTED)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == LISTED
    assert {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")} == {"GET", "HEAD", "POST"}
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "Origin" in response.headers.get("Vary", "")
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_listed_origin_is_matched_exactly_after_normalising_the_setting(cors_client):
    assert _preflight(cors_client, "http://localhost:8080").headers["Access-Control-Allow-Origin"] == \
        "http://localhost:8080"
    for near_miss in ("https://partner.example:8443", "http://partner.example", "https://sub.partner.example",
                      "https://partner.example.evil.example", "null"):
        assert _acao_headers(_preflight(cors_client, near_miss)) == [], near_miss


def test_a_listed_origin_preflight_for_a_method_we_do_not_allow_gets_nothing(cors_client):
    assert _acao_headers(_preflight(cors_client, LISTED, method="DELETE")) == []


def test_simple_requests_carry_the_listed_origin_only(cors_client):
    listed = cors_client.get("/healthz", headers={"Origin": LISTED})
    assert listed.headers["Access-Control-Allow-Origin"] == LISTED and "Origin" in listed.headers["Vary"]
    foreign = cors_client.get("/healthz", headers={"Origin": FOREIGN})
    assert _acao_headers(foreign) == [] and "Origin" in foreign.headers["Vary"]


def test_no_origin_is_allowed_cross_site_by_default(client):
    response = client.get("/healthz", headers={"Origin": LISTED})
    assert _acao_headers(response) == []


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_an_unsafe_request_from_a_foreign_origin_is_refused_even_with_a_valid_token(cors_client, method):
    token = csrf_of(cors_client)
    response = cors_client.open("/_cors/echo", method=method, headers={"Origin": FOREIGN, "X-CSRF-Token": token})
    assert response.status_code == 403
    assert b"another site" in response.data
    assert _acao_headers(response) == []


def test_a_foreign_origin_is_refused_on_the_real_app_too(client, make_tenant):
    from tests.conftest import sign_in

    tenant = make_tenant()
    sign_in(client, tenant)
    token = csrf_of(client)
    response = client.post("/sign-out", headers={"Origin": FOREIGN, "X-CSRF-Token": token})
    assert response.status_code == 403


def test_origin_null_is_refused_for_unsafe_requests(cors_client):
    token = csrf_of(cors_client)
    response = cors_client.post("/_cors/echo", headers={"Origin": "null", "X-CSRF-Token": token})
    assert response.status_code == 403


def test_same_origin_and_originless_posts_with_a_token_still_work(cors_client):
    token = csrf_of(cors_client)
    assert cors_client.post("/_cors/echo", headers={"Origin": OURS, "X-CSRF-Token": token}).status_code == 200
    assert cors_client.post("/_cors/echo", headers={"X-CSRF-Token": token}).status_code == 200
    assert cors_client.post("/_cors/echo", data={"csrf_token": token}).status_code == 200
    # A listed origin may send one too, though without credentials it never has a session's token.
    assert cors_client.post("/_cors/echo", headers={"Origin": LISTED, "X-CSRF-Token": token}).status_code == 200


def test_a_same_origin_post_still_needs_its_token(cors_client):
    csrf_of(cors_client)
    assert cors_client.post("/_cors/echo", headers={"Origin": OURS}).status_code == 400


def test_outside_production_the_origin_the_browser_is_on_counts_as_ours(cors_client):
    # The test client addresses http://localhost; make dev and the browser tests listen on a port of their own.
    token = csrf_of(cors_client)
    assert cors_client.post("/_cors/echo", headers={"Origin": "http://localhost", "X-CSRF-Token": token}).status_code \
        == 200


def test_in_production_only_base_url_and_listed_origins_may_send_unsafe_requests(config):
    prod = policy_for(replace(config, APP_ENV="production", BASE_URL="https://bi.example",
                              CORS_ALLOWED_ORIGINS=LISTED))
    assert prod.may_send_unsafe("https://bi.example", "https://bi.example")
    assert prod.may_send_unsafe(LISTED, "https://bi.example")
    assert not prod.may_send_unsafe("https://rebound.example", "https://rebound.example")
    assert not prod.may_send_unsafe("null", "https://bi.example")


@pytest.mark.parametrize("value", [
    "*", "https://*.example.com", "partner.example", "https://partner.example/path", "ftp://partner.example",
    "https://user@partner.example", "https://partner.example?x=1", "null", "https://partner.example:99999",
    "https://",
])
def test_malformed_cors_origins_are_refused_naming_the_variable(value):
    with pytest.raises(ConfigError, match="CORS_ALLOWED_ORIGINS"):
        Config(APP_ENV="test", CORS_ALLOWED_ORIGINS=value).validate()


def test_production_accepts_only_https_cors_origins():
    with pytest.raises(ConfigError, match="CORS_ALLOWED_ORIGINS"):
        parse_origins("http://partner.example", https_only=True)
    assert parse_origins("HTTPS://Partner.Example:443, https://b.example:8443", https_only=True) == frozenset(
        {"https://partner.example", "https://b.example:8443"})
    assert parse_origins("", https_only=True) == frozenset()
