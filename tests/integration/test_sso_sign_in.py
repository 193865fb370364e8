"""SSO sign-in end to end against a real OpenID provider (node `oidc-provider`): linking, matching, refusals."""

from __future__ import annotations

import uuid
from dataclasses import replace
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy import select

from app.audit.models import AuditEntry
from app.auth.models import SsoIdentity
from app.tenancy import tenant_session
from app.users.models import User
from tests.conftest import csrf_of
from tests.integration import sso_helpers
from tests.integration.signin_helpers import latest_code, outbox, run_jobs, type_code
from tests.integration.sso_helpers import add_user as _user
from tests.oidc_fixtures import AT, GOOGLE_ACCOUNTS, MICROSOFT_ACCOUNTS, TENANT_A, follow_provider

sso_app = sso_helpers.sso_app  # the fixture, shared with the other SSO tests


def _start(client, provider: str, hint: str) -> str:  # type: ignore[no-untyped-def]
    response = client.get(f"/sign-in/sso/{provider}?login_hint={hint}")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return response.headers["Location"]


def _back(client, url: str):  # type: ignore[no-untyped-def]
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def _sso(client, provider: str, hint: str):  # type: ignore[no-untyped-def]
    return _back(client, follow_provider(_start(client, provider, hint)))


def _into(client, response, tenant):  # type: ignore[no-untyped-def]
    """Follow a sign-in into ``tenant``: straight in, or through the chooser when the identity has several."""
    if response.headers.get("Location") == "/sign-in/choose":
        response = client.post("/sign-in/choose", data={"tenant_id": str(tenant.id), "csrf_token": csrf_of(client)})
    return response


def _identities(app, tenant) -> list[SsoIdentity]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        rows = s.execute(select(SsoIdentity)).scalars().all()
        for r in rows:
            s.expunge(r)
        return rows


def test_google_with_a_verified_email_links_once_and_then_matches_the_identity(sso_app, make_tenant):
    t = make_tenant()
    ann = GOOGLE_ACCOUNTS["ann"]
    user_id = _user(sso_app, t, ann["email"])
    client = sso_app.test_client()
    response = _into(client, _sso(client, "google", "ann"), t)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    [identity] = _identities(sso_app, t)
    assert (identity.user_id, identity.subject, identity.provider_tenant) == (user_id, ann["sub"], "")
    with tenant_session(t.id, sso_app.extensions["session_factory"]) as s:
        actions = s.execute(select(AuditEntry.action)).scalars().all()
        # Later sign-ins match the identity, not the email: change the user's email and sign in again.
        s.get(User, user_id).email = "renamed" + AT + "example.com"
    assert "auth.sso_linked" in actions and "auth.signed_in" in actions
    again = sso_app.test_client()
    assert _into(again, _sso(again, "google", "ann"), t).headers["Location"] == "/"
    assert len(_identities(sso_app, t)) == 1


def test_microsoft_multi_tenant_links_with_the_tenant_id(sso_app, make_tenant):
    t = make_tenant()
    _user(sso_app, t, MICROSOFT_ACCOUNTS["cara"]["email"])
    client = sso_app.test_client()
    assert _into(client, _sso(client, "microsoft", "cara"), t).headers["Location"] == "/"
    [identity] = _identities(sso_app, t)
    assert identity.provider_tenant == TENANT_A and identity.issuer.endswith(f"/{TENANT_A}/v2.0")


def test_an_unverified_email_is_never_linked_without_an_emailed_code(sso_app, make_tenant):
    t = make_tenant()
    ben = GOOGLE_ACCOUNTS["ben"]
    _user(sso_app, t, ben["email"])
    client = sso_app.test_client()
    response = _sso(client, "google", "ben")
    assert response.headers["Location"] == "/sign-in/code"
    assert _identities(sso_app, t) == [] and client.get("/").status_code == 302  # not linked, not signed in
    run_jobs(sso_app)
    assert outbox(sso_app)[0]["subject"] == "Confirm your sign-in link"
    assert type_code(client, latest_code(sso_app, ben["email"].lower())).headers["Location"] == "/"
    [identity] = _identities(sso_app, t)
    assert identity.subject == ben["sub"]


def test_microsoft_without_the_verified_domain_claim_needs_a_code_too(sso_app, make_tenant):
    t = make_tenant()
    _user(sso_app, t, MICROSOFT_ACCOUNTS["dan"]["email"])
    client = sso_app.test_client()
    assert _sso(client, "microsoft", "dan").headers["Location"] == "/sign-in/code"
    assert _identities(sso_app, t) == []


def test_a_forged_state_is_refused(sso_app, make_tenant):
    t = make_tenant()
    _user(sso_app, t, GOOGLE_ACCOUNTS["ann"]["email"])
    client = sso_app.test_client()
    url = follow_provider(_start(client, "google", "ann"))
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    query["state"] = ["forged-" + uuid.uuid4().hex]
    response = client.get(f"{parts.path}?{urlencode(query, doseq=True)}")
    assert response.status_code == 400 and "not started in this browser" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_a_replayed_code_is_refused(sso_app, make_tenant):
    t = make_tenant()
    _user(sso_app, t, GOOGLE_ACCOUNTS["ann"]["email"])
    client = sso_app.test_client()
    url = follow_provider(_start(client, "google", "ann"))
    assert _back(client, url).status_code == 302
    attacker = sso_app.test_client()
    _start(attacker, "google", "ann")  # a pending sign-in of its own, so only the code is replayed
    with attacker.session_transaction() as sess:
        [state] = list(sess["sso_pending"])
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    query["state"] = [state]
    response = attacker.get(f"{parts.path}?{urlencode(query, doseq=True)}")
    assert response.status_code == 400 and attacker.get("/").status_code == 302


def test_a_missing_pkce_verifier_is_refused(sso_app, make_tenant):
    t = make_tenant()
    _user(sso_app, t, GOOGLE_ACCOUNTS["ann"]["email"])
    client = sso_app.test_client()
    url = follow_provider(_start(client, "google", "ann"))
    with client.session_transaction() as sess:
        pending = sess["sso_pending"]
        for entry in pending.values():
            entry.pop("code_verifier", None)
        sess["sso_pending"] = pending
    response = _back(client, url)
    assert response.status_code == 400 and client.get("/").status_code == 302


def test_a_wrong_issuer_is_refused(config, oidc_provider, make_tenant, redis_conn):
    from app import create_app

    values = {**oidc_provider.config_values(),
              "GOOGLE_METADATA_URL": oidc_provider.google.variant_metadata_url("wrong-issuer")}
    app = create_app(replace(config, **values))
    try:
        t = make_tenant()
        _user(app, t, GOOGLE_ACCOUNTS["ann"]["email"])
        client = app.test_client()
        response = _sso(client, "google", "ann")
        assert response.status_code == 400 and client.get("/").status_code == 302
        assert _identities(app, t) == []
    finally:
        app.extensions["engine"].dispose()


def test_an_identity_whose_issuer_does_not_match_its_tenant_is_refused(sso_app, make_tenant):
    t = make_tenant()
    _user(sso_app, t, MICROSOFT_ACCOUNTS["eve"]["email"])
    client = sso_app.test_client()
    response = _sso(client, "microsoft", "eve")
    assert response.status_code == 400 and _identities(sso_app, t) == []


def test_an_email_without_an_account_is_told_so(sso_app):
    client = sso_app.test_client()
    response = _sso(client, "microsoft", "fay")
    assert response.status_code == 403 and "has no Better Invoice account" in response.get_data(as_text=True)


def test_the_sign_in_page_offers_the_enabled_providers(sso_app, client):
    page = sso_app.test_client().get("/sign-in").get_data(as_text=True)
    assert "Continue with Google" in page and "Continue with Microsoft" in page
    assert "Continue with" not in client.get("/sign-in").get_data(as_text=True)  # none configured there
    assert csrf_of(client)


def test_an_identity_with_an_unproven_email_cannot_switch_into_that_emails_other_accounts(sso_app, make_tenant,
                                                                                           oidc_provider):
    ben = GOOGLE_ACCOUNTS["ben"]  # the provider does not vouch for this address
    own = make_tenant("Ben's own MSP")
    ben_user = _user(sso_app, own, "ben-own" + AT + "example.com")
    with tenant_session(own.id, sso_app.extensions["session_factory"]) as s:  # linked earlier, with proof
        s.add(SsoIdentity(id=uuid.uuid4(), tenant_id=own.id, user_id=ben_user, provider="google",
                          issuer=oidc_provider.google.issuer, provider_tenant="", subject=ben["sub"],
                          email="ben-own" + AT + "example.com"))
    victim = make_tenant("Victim MSP")
    _user(sso_app, victim, ben["email"])  # someone else's account under the address Ben's provider now shows
    client = sso_app.test_client()
    response = _into(client, _sso(client, "google", "ben"), own)
    assert response.headers["Location"] == "/"
    page = client.get("/sign-in/choose").get_data(as_text=True)
    assert "Victim MSP" not in page
    refused = client.post("/sign-in/choose", data={"tenant_id": str(victim.id), "csrf_token": csrf_of(client)})
    assert refused.status_code == 400


def test_asking_for_a_plain_code_abandons_a_pending_sso_link(sso_app, make_tenant):
    t = make_tenant()
    _user(sso_app, t, MICROSOFT_ACCOUNTS["fay"]["email"])
    client = sso_app.test_client()
    assert _sso(client, "microsoft", "fay").headers["Location"] == "/sign-in/code"
    with client.session_transaction() as sess:
        assert "sso_link" in sess
    client.post("/sign-in", data={"email": t.owner_email, "csrf_token": csrf_of(client)})
    with client.session_transaction() as sess:
        assert "sso_link" not in sess
    run_jobs(sso_app)
    type_code(client, latest_code(sso_app, t.owner_email))
    assert _identities(sso_app, t) == []  # the owner's proof never linked Fay's identity
