"""SSO building blocks (app/auth/oidc.py) end to end against the real `oidc-provider` running under node.

A small Flask app with the standard cookie session mounts ``begin`` and ``complete``; httpx plays the browser at
the provider. Attacks are played by tampering with what a browser would carry: the callback's query, the
authorization URL, or the session.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from authlib.integrations.flask_client import FlaskOAuth2App
from flask import Flask, request, url_for

from app.auth import oidc
from app.auth.oidc import SsoError, begin, complete, enabled_providers, init_oidc
from app.config import Config, ConfigError
from devtools.oidc_provider import start
from tests.oidc_fixtures import (
    AT,
    GOOGLE_ACCOUNTS,
    GOOGLE_CLIENT_ID,
    OTHER_CLIENT_ID,
    TENANT_A,
    TENANT_B,
    OidcProviders,
    follow_provider,
    google_config,
)


def make_app(providers: OidcProviders, **overrides: str) -> Flask:
    cfg = Config(APP_ENV="test", SECRET_KEY="sso-test-secret-" + "k" * 32, **{**providers.config_values(), **overrides})
    cfg.validate()
    app = Flask("sso_test")
    app.config.update(SECRET_KEY=cfg.SECRET_KEY, BI=cfg, TESTING=True)
    init_oidc(app, cfg)

    def callback_url(provider: str) -> str:
        return url_for("callback", provider=provider, _external=True)

    @app.get("/sign-in/sso/<provider>")
    def start_sso(provider: str):  # type: ignore[no-untyped-def]
        try:
            return begin(provider, callback_url(provider), request.args.get("login_hint"))
        except SsoError as exc:
            return {"reason": exc.reason, "message": exc.message}, 400

    @app.get("/sign-in/sso/<provider>/callback")
    def callback(provider: str):  # type: ignore[no-untyped-def]
        try:
            identity = complete(provider, callback_url(provider))
        except SsoError as exc:
            return {"reason": exc.reason, "message": exc.message}, 400
        return {"identity": dataclasses.asdict(identity)}

    return app


@pytest.fixture(scope="module")
def sso_app(oidc_provider: OidcProviders) -> Flask:
    return make_app(oidc_provider)


def authorization_url(client: Any, provider: str, login_hint: str | None) -> str:
    response = client.get(f"/sign-in/sso/{provider}", query_string={"login_hint": login_hint} if login_hint else {})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.headers["Location"]


def with_query(url: str, **changes: str | None) -> str:
    """``url`` with query parameters replaced (a value of None removes the parameter)."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def sign_in(client: Any, provider: str, login_hint: str | None,
            tamper_authorization: Callable[[str], str] | None = None,
            tamper_callback: Callable[[str], str] | None = None) -> tuple[int, dict[str, Any]]:
    """The whole round trip as a browser makes it; returns the callback's status and JSON."""
    auth_url = authorization_url(client, provider, login_hint)
    if tamper_authorization:
        auth_url = tamper_authorization(auth_url)
    callback = follow_provider(auth_url)
    if tamper_callback:
        callback = tamper_callback(callback)
    response = client.get(callback)
    return response.status_code, response.get_json()


def refused(result: tuple[int, dict[str, Any]]) -> str:
    status, body = result
    assert status == 400, body
    assert body["message"] and "Traceback" not in body["message"]
    return body["reason"]


# --- success -------------------------------------------------------------------------------------------------


def test_google_sign_in_gives_the_verified_identity(sso_app: Flask, oidc_provider: OidcProviders) -> None:
    status, body = sign_in(sso_app.test_client(), "google", "ann")
    assert status == 200, body
    assert body["identity"] == {
        "provider": "google", "issuer": oidc_provider.google.issuer, "tenant_id": None,
        "subject": GOOGLE_ACCOUNTS["ann"]["sub"], "email": f"ann.admin{AT}gmail.example", "email_vouched": True,
        "name": "Ann Admin",
    }


def test_google_authorization_request_uses_pkce_s256_nonce_and_state(sso_app: Flask) -> None:
    query = query_of(authorization_url(sso_app.test_client(), "google", "ann"))
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url of a SHA-256 digest
    assert len(query["state"]) >= 43 and len(query["nonce"]) >= 20
    assert query["scope"].split() == ["openid", "email", "profile"]
    assert query["login_hint"] == "ann"
    assert query["redirect_uri"] == "http://localhost/sign-in/sso/google/callback"


def test_microsoft_sign_in_through_the_common_endpoint_takes_the_issuer_of_the_token_tenant(
        sso_app: Flask, oidc_provider: OidcProviders) -> None:
    status, body = sign_in(sso_app.test_client(), "microsoft", "cara")
    assert status == 200, body
    assert body["identity"] == {
        "provider": "microsoft", "issuer": oidc_provider.microsoft.tenant_issuer(TENANT_A), "tenant_id": TENANT_A,
        "subject": "AAAAAAAAAAAAAAAAAAAAAMcara-pairwise-sub", "email": f"cara{AT}contoso.example",
        "email_vouched": True, "name": "Cara Contoso",
    }
    assert "{tenantid}" in oidc_provider.microsoft.issuer  # the discovery document only has the template

    status, body = sign_in(sso_app.test_client(), "microsoft", f"dan{AT}fabrikam.example")  # a second tenant
    assert status == 200, body
    assert body["identity"]["tenant_id"] == TENANT_B
    assert body["identity"]["issuer"] == oidc_provider.microsoft.tenant_issuer(TENANT_B)


# --- unverified email -----------------------------------------------------------------------------------------


def test_google_unverified_email_is_not_vouched_for(sso_app: Flask) -> None:
    status, body = sign_in(sso_app.test_client(), "google", "ben")
    assert status == 200, body
    assert body["identity"]["email"] == f"ben{AT}unverified.example"
    assert body["identity"]["email_vouched"] is False


@pytest.mark.parametrize("account", ["dan", "fay"])  # xms_edov false, and no xms_edov claim at all
def test_microsoft_email_without_a_verified_domain_is_not_vouched_for(sso_app: Flask, account: str) -> None:
    status, body = sign_in(sso_app.test_client(), "microsoft", account)
    assert status == 200, body
    assert body["identity"]["email_vouched"] is False


def test_an_account_without_an_email_is_refused(sso_app: Flask) -> None:
    assert refused(sign_in(sso_app.test_client(), "google", "nomail")) == "missing_email"


# --- state ------------------------------------------------------------------------------------------------


def test_forged_state_is_refused(sso_app: Flask) -> None:
    forged = secrets.token_urlsafe(32)
    assert refused(sign_in(sso_app.test_client(), "google", "ann",
                           tamper_callback=lambda url: with_query(url, state=forged))) == "state"
    assert refused(sign_in(sso_app.test_client(), "google", "ann",
                           tamper_callback=lambda url: with_query(url, state=None))) == "state"


def test_callback_arriving_in_another_browser_is_refused(sso_app: Flask) -> None:
    """Login CSRF: a valid code and state, but from an attempt this browser never started."""
    attacker = sso_app.test_client()
    callback = follow_provider(authorization_url(attacker, "google", "ann"))
    victim = sso_app.test_client()
    response = victim.get(callback)
    assert response.status_code == 400 and response.get_json()["reason"] == "state"


def test_state_of_one_provider_does_not_complete_the_other(sso_app: Flask) -> None:
    client = sso_app.test_client()
    callback = follow_provider(authorization_url(client, "google", "ann"))
    wrong = callback.replace("/sso/google/callback", "/sso/microsoft/callback")
    response = client.get(wrong)
    assert response.status_code == 400 and response.get_json()["reason"] == "state"


def test_state_expires(sso_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    client = sso_app.test_client()
    callback = follow_provider(authorization_url(client, "google", "ann"))
    real_time = time.time
    monkeypatch.setattr(oidc.time, "time", lambda: real_time() + oidc.PENDING_TTL_SECONDS + 1)
    response = client.get(callback)
    assert response.status_code == 400 and response.get_json()["reason"] == "state"


# --- codes and PKCE -----------------------------------------------------------------------------------------


def test_replayed_authorization_code_is_refused(sso_app: Flask) -> None:
    client = sso_app.test_client()
    callback = follow_provider(authorization_url(client, "google", "ann"))
    cloned_session = client.get_cookie("session").value  # what an attacker with a copy of the browser holds
    first = client.get(callback)
    assert first.status_code == 200, first.get_json()

    again = client.get(callback)  # the attempt was single use
    assert again.status_code == 400 and again.get_json()["reason"] == "state"

    client.set_cookie("session", cloned_session, domain="localhost")  # state and verifier restored: only the
    replay = client.get(callback)  # provider's single-use code stops it now
    assert replay.status_code == 400 and replay.get_json()["reason"] == "token_exchange"


def test_callback_without_the_pkce_verifier_is_refused(sso_app: Flask) -> None:
    client = sso_app.test_client()
    callback = follow_provider(authorization_url(client, "google", "ann"))
    with client.session_transaction() as sess:
        pending = sess[oidc.PENDING_SESSION_KEY]
        for entry in pending.values():
            entry.pop("code_verifier")
        sess[oidc.PENDING_SESSION_KEY] = pending
    response = client.get(callback)
    assert response.status_code == 400 and response.get_json()["reason"] == "missing_verifier"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def raw_authorization(provider_metadata: dict[str, Any], client_id: str, *, login_hint: str, nonce: str,
                      challenge: str | None) -> dict[str, str]:
    params = {"client_id": client_id, "response_type": "code", "scope": "openid email profile",
              "redirect_uri": "http://localhost/sign-in/sso/google/callback", "state": "s-" + secrets.token_hex(8),
              "nonce": nonce, "login_hint": login_hint}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    return query_of(follow_provider(provider_metadata["authorization_endpoint"] + "?" + urlencode(params)))


def test_the_provider_itself_requires_pkce(oidc_provider: OidcProviders) -> None:
    metadata = httpx.get(oidc_provider.google.metadata_url, timeout=10).json()
    without = raw_authorization(metadata, GOOGLE_CLIENT_ID, login_hint="ann", nonce="n", challenge=None)
    assert without["error"] == "invalid_request" and "PKCE" in without["error_description"]

    verifier, challenge = pkce_pair()
    granted = raw_authorization(metadata, GOOGLE_CLIENT_ID, login_hint="ann", nonce="n", challenge=challenge)
    token = httpx.post(metadata["token_endpoint"], timeout=10,
                       auth=(GOOGLE_CLIENT_ID, oidc_provider.google_secret),
                       data={"grant_type": "authorization_code", "code": granted["code"],
                             "redirect_uri": "http://localhost/sign-in/sso/google/callback"})
    assert token.status_code == 400 and token.json()["error"] == "invalid_grant"
    assert verifier  # the right verifier existed; the provider refused a request without it


# --- issuer, audience, nonce, signature, expiry ------------------------------------------------------------


def test_discovery_document_with_another_issuer_is_refused(oidc_provider: OidcProviders) -> None:
    app = make_app(oidc_provider, GOOGLE_METADATA_URL=oidc_provider.google.variant_metadata_url("wrong-issuer"))
    # The provider's RFC 9207 `iss` response parameter already gives it away ...
    assert refused(sign_in(app.test_client(), "google", "ann")) == "issuer"
    # ... and without it, the id_token's own iss does.
    assert refused(sign_in(app.test_client(), "google", "ann",
                           tamper_callback=lambda url: with_query(url, iss=None))) == "invalid_id_token"


def test_microsoft_discovery_with_another_issuer_template_is_refused(oidc_provider: OidcProviders) -> None:
    app = make_app(oidc_provider,
                   MICROSOFT_METADATA_URL=oidc_provider.microsoft.variant_metadata_url("wrong-issuer"))
    assert refused(sign_in(app.test_client(), "microsoft", "cara")) == "issuer"
    assert refused(sign_in(app.test_client(), "microsoft", "cara",
                           tamper_callback=lambda url: with_query(url, iss=None))) == "invalid_id_token"


def test_microsoft_token_whose_issuer_is_not_its_own_tenant_is_refused(sso_app: Flask,
                                                                       oidc_provider: OidcProviders) -> None:
    """eve's token says tid = tenant A but was issued by tenant B: properly signed, wrong issuer for its tid."""
    client = sso_app.test_client()
    callback = follow_provider(authorization_url(client, "microsoft", "eve"))
    assert query_of(callback)["iss"] == oidc_provider.microsoft.tenant_issuer(TENANT_B)
    response = client.get(callback)
    assert response.status_code == 400 and response.get_json()["reason"] == "invalid_id_token"


def test_nonce_mismatch_is_refused(sso_app: Flask) -> None:
    other_nonce = secrets.token_urlsafe(16)
    result = sign_in(sso_app.test_client(), "google", "ann",
                     tamper_authorization=lambda url: with_query(url, nonce=other_nonce))
    assert refused(result) == "invalid_id_token"


def test_id_token_signed_with_another_key_is_refused(oidc_provider: OidcProviders) -> None:
    """The discovery document's jwks_uri serves a different key under the same kid."""
    app = make_app(oidc_provider, GOOGLE_METADATA_URL=oidc_provider.google.variant_metadata_url("foreign-keys"))
    assert refused(sign_in(app.test_client(), "google", "ann")) == "invalid_id_token"
    app = make_app(oidc_provider,
                   MICROSOFT_METADATA_URL=oidc_provider.microsoft.variant_metadata_url("foreign-keys"))
    assert refused(sign_in(app.test_client(), "microsoft", "cara")) == "invalid_id_token"


def test_id_token_issued_to_another_client_is_refused(oidc_provider: OidcProviders) -> None:
    """A genuine, correctly signed id_token whose aud is another application."""
    metadata = httpx.get(oidc_provider.google.metadata_url, timeout=10).json()
    verifier, challenge = pkce_pair()
    nonce = secrets.token_urlsafe(16)
    granted = raw_authorization(metadata, OTHER_CLIENT_ID, login_hint="ann", nonce=nonce, challenge=challenge)
    token = httpx.post(metadata["token_endpoint"], timeout=10, auth=(OTHER_CLIENT_ID, oidc_provider.other_secret),
                       data={"grant_type": "authorization_code", "code": granted["code"], "code_verifier": verifier,
                             "redirect_uri": "http://localhost/sign-in/sso/google/callback"}).json()

    ours = make_app(oidc_provider)
    theirs = make_app(oidc_provider, GOOGLE_CLIENT_ID=OTHER_CLIENT_ID, GOOGLE_CLIENT_SECRET=oidc_provider.other_secret)
    with theirs.app_context():  # control: the token is valid for the client it was issued to
        client = theirs.extensions["oidc"].create_client("google")
        claims = oidc._verify_id_token("google", client, client.load_server_metadata(), token, nonce)
        assert claims["aud"] == OTHER_CLIENT_ID
    with ours.app_context(), pytest.raises(SsoError) as refusal:
        client = ours.extensions["oidc"].create_client("google")
        oidc._verify_id_token("google", client, client.load_server_metadata(), token, nonce)
    assert refusal.value.reason == "invalid_id_token"


def test_expired_id_token_is_refused(oidc_provider: OidcProviders, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens that live one second, held back two seconds before they are checked (no clock leeway)."""
    short = start(google_config(oidc_provider.google_secret, oidc_provider.other_secret, id_token_ttl_seconds=1))
    try:
        app = make_app(oidc_provider, GOOGLE_METADATA_URL=short.metadata_url)
        monkeypatch.setattr(oidc, "ID_TOKEN_LEEWAY_SECONDS", 0)
        real_fetch = FlaskOAuth2App.fetch_access_token

        def late_fetch(self: FlaskOAuth2App, *args: Any, **kwargs: Any) -> Any:
            token = real_fetch(self, *args, **kwargs)
            time.sleep(2.1)
            return token

        monkeypatch.setattr(FlaskOAuth2App, "fetch_access_token", late_fetch)
        assert refused(sign_in(app.test_client(), "google", "ann")) == "invalid_id_token"
    finally:
        short.stop()


# --- provider errors, configuration, logs ----------------------------------------------------------------------


def test_provider_error_response_is_refused(sso_app: Flask) -> None:
    """The provider answers error=access_denied (no such account) and the callback says so, without a 500."""
    assert refused(sign_in(sso_app.test_client(), "google", f"nobody{AT}nowhere.example")) == "provider_error"


def test_only_providers_with_client_id_and_secret_are_enabled(oidc_provider: OidcProviders) -> None:
    app = make_app(oidc_provider, MICROSOFT_CLIENT_ID="", MICROSOFT_CLIENT_SECRET="")
    assert enabled_providers(app) == ["google"]
    response = app.test_client().get("/sign-in/sso/microsoft")
    assert response.status_code == 400 and response.get_json()["reason"] == "not_enabled"
    assert enabled_providers(make_app(oidc_provider)) == ["google", "microsoft"]
    with pytest.raises(ConfigError, match="GOOGLE_CLIENT_ID"):
        Config(APP_ENV="test", GOOGLE_CLIENT_ID="only-the-id").validate()


def test_unreachable_provider_is_a_clear_refusal_not_an_error(oidc_provider: OidcProviders) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/.well-known/openid-configuration"
    app = make_app(oidc_provider, GOOGLE_METADATA_URL=dead)  # init does no network
    response = app.test_client().get("/sign-in/sso/google")
    assert response.status_code == 400 and response.get_json()["reason"] == "provider_unavailable"


def test_codes_tokens_and_verifiers_never_reach_the_logs(sso_app: Flask, caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    real_fetch = FlaskOAuth2App.fetch_access_token

    def recording_fetch(self: FlaskOAuth2App, *args: Any, **kwargs: Any) -> Any:
        seen.append({"verifier": kwargs["code_verifier"], **real_fetch(self, *args, **kwargs)})
        return seen[-1]

    monkeypatch.setattr(FlaskOAuth2App, "fetch_access_token", recording_fetch)
    client = sso_app.test_client()
    with caplog.at_level(logging.DEBUG):
        callback = follow_provider(authorization_url(client, "google", "ann"))
        assert client.get(callback).status_code == 200
        assert client.get(callback).status_code == 400  # a refusal is logged too
    # httpx/httpcore are the test's browser, which sees the code in the redirect like any browser does.
    app_logs = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert "refused: state" in app_logs
    assert "POST /token" in app_logs  # the app's own HTTP client logged at DEBUG, and shows nothing secret
    for value in (query_of(callback)["code"], query_of(callback)["state"], seen[0]["verifier"],
                  seen[0]["access_token"], seen[0]["id_token"]):
        assert value not in app_logs


# --- the local provider itself ------------------------------------------------------------------------------


def test_one_browser_can_switch_accounts_at_the_provider(oidc_provider: OidcProviders, sso_app: Flask) -> None:
    with httpx.Client(timeout=10) as browser:
        for hint, sub in (("ann", GOOGLE_ACCOUNTS["ann"]["sub"]), ("ben", GOOGLE_ACCOUNTS["ben"]["sub"]),
                          ("ann", GOOGLE_ACCOUNTS["ann"]["sub"])):
            client = sso_app.test_client()
            response = client.get(follow_provider(authorization_url(client, "google", hint), browser))
            assert response.status_code == 200 and response.get_json()["identity"]["subject"] == sub


def test_loopback_callback_on_any_port_is_accepted_for_browser_tests(oidc_provider: OidcProviders) -> None:
    metadata = httpx.get(oidc_provider.google.metadata_url, timeout=10).json()
    _verifier, challenge = pkce_pair()
    redirect = "http://127.0.0.1:54321/sign-in/sso/google/callback"
    params = {"client_id": GOOGLE_CLIENT_ID, "response_type": "code", "scope": "openid email profile",
              "redirect_uri": redirect, "state": "s", "nonce": "n", "login_hint": "ann",
              "code_challenge": challenge, "code_challenge_method": "S256"}
    landed = follow_provider(metadata["authorization_endpoint"] + "?" + urlencode(params))
    assert landed.startswith(redirect + "?") and "code" in query_of(landed)
    params["redirect_uri"] = "http://127.0.0.1:54321/somewhere-else"
    refused_at_provider = httpx.get(metadata["authorization_endpoint"] + "?" + urlencode(params), timeout=10)
    assert refused_at_provider.status_code == 400 and "redirect_uri" in refused_at_provider.text
