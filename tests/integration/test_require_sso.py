"""A workspace that requires Google or Microsoft sign-in: codes refused there (never revealed on the page), SSO
still in, owners only to change it (audited), break-glass for owners (audited, announced), several workspaces."""

from __future__ import annotations

import re
import uuid

import pytest

from app.audit.log import Actor, Origin
from app.tenancy import tenant_session
from tests.conftest import csrf_of, sign_in
from tests.integration.signin_helpers import (
    AT,
    ask_for_code,
    audit_rows,
    latest_code,
    outbox,
    run_jobs,
    sign_in_with_code,
    type_code,
)
from tests.integration.sso_helpers import add_user, into, sso, sso_app  # noqa: F401  (sso_app is a fixture)
from tests.integration.test_migrations import empty_database  # noqa: F401  (a fixture)
from tests.oidc_fixtures import GOOGLE_ACCOUNTS


@pytest.fixture(autouse=True)
def _clean(redis_conn):  # type: ignore[no-untyped-def]
    return redis_conn


def _require_sso(app, tenant, on: bool = True) -> None:  # type: ignore[no-untyped-def]
    from app.auth.policy import set_require_sso

    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        set_require_sso(s, tenant.id, on, Actor.system("test"), None, Origin())


def _mail_to(app, email: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [m for m in outbox(app) if m["to"] == email]


def _normal(html: str, email: str) -> str:
    html = re.sub(r'(name="csrf_token" value=|"X-CSRF-Token": )"[^"]*"', r'\1"T"', html.replace(email, "E"))
    return re.sub(r"Request [A-Za-z0-9_.:-]+", "Request R", html)


def test_a_workspace_requiring_sso_gets_no_code_and_the_page_says_nothing(app, make_tenant):
    t = make_tenant()
    _require_sso(app, t)
    unknown = f"nobody-{uuid.uuid4().hex[:6]}{AT}example.com"
    answers = {}
    for email in (t.owner_email, unknown):
        client = app.test_client()
        response = ask_for_code(app, client, email)
        answers[email] = (response.status_code, response.headers["Location"],
                          _normal(client.get("/sign-in/code").get_data(as_text=True), email))
    assert answers[t.owner_email] == answers[unknown]
    [notice] = _mail_to(app, t.owner_email)
    assert notice["subject"] == "Your workspace requires Google or Microsoft sign-in"
    assert latest_code(app, t.owner_email) is None


def test_a_code_mailed_before_the_policy_was_turned_on_no_longer_signs_in(app, client, make_tenant):
    t = make_tenant()
    ask_for_code(app, client, t.owner_email)
    code = latest_code(app, t.owner_email)
    _require_sso(app, t)
    response = type_code(client, code)
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"
    assert "requires Google or Microsoft sign-in" in client.get("/sign-in").get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_codes_sign_in_when_the_policy_is_off(app, client, make_tenant):
    t = make_tenant()
    _require_sso(app, t)
    _require_sso(app, t, on=False)
    assert sign_in_with_code(app, client, t.owner_email).headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_sso_still_signs_in_where_the_policy_requires_it(sso_app, make_tenant):  # noqa: F811
    t = make_tenant()
    add_user(sso_app, t, GOOGLE_ACCOUNTS["ann"]["email"])
    _require_sso(sso_app, t)
    client = sso_app.test_client()
    assert into(client, sso(client, "google", "ann"), t).headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_only_an_owner_may_change_the_policy_and_the_change_is_audited(sso_app, make_tenant):  # noqa: F811
    t = make_tenant()
    for role in ("admin", "billing_manager", "reviewer", "viewer"):
        other = sso_app.test_client()
        sign_in(other, t, add_user(sso_app, t, f"{role}-{uuid.uuid4().hex[:6]}{AT}example.com", role))
        assert other.get("/settings/sign-in/").status_code == 403
        refused = other.post("/settings/sign-in/", data={"methods": "sso_only", "csrf_token": csrf_of(other)})
        assert refused.status_code == 403
    assert audit_rows(sso_app, t.id, "settings.sign_in_policy") == []
    owner = sso_app.test_client()
    sign_in(owner, t)
    assert "Require Google or Microsoft sign-in" in owner.get("/settings/sign-in/").get_data(as_text=True)
    saved = owner.post("/settings/sign-in/", data={"methods": "sso_only", "csrf_token": csrf_of(owner)},
                       headers={"HX-Request": "true"})
    assert saved.status_code == 200 and "<html" not in saved.get_data(as_text=True)  # the form partial, swapped
    assert 'value="sso_only" checked' in saved.get_data(as_text=True)
    [row] = audit_rows(sso_app, t.id, "settings.sign_in_policy")
    assert (row.before, row.after, row.actor_id) == ({"require_sso": False}, {"require_sso": True}, str(t.owner_id))


def test_bad_input_is_refused_beside_the_field(sso_app, app, make_tenant):  # noqa: F811
    t = make_tenant()
    owner = sso_app.test_client()
    sign_in(owner, t)
    response = owner.post("/settings/sign-in/", data={"methods": "nonsense", "csrf_token": csrf_of(owner)})
    assert response.status_code == 422 and "Choose how people may sign in" in response.get_data(as_text=True)
    no_sso = app.test_client()  # a server without Google or Microsoft set up
    sign_in(no_sso, t)
    response = no_sso.post("/settings/sign-in/", data={"methods": "sso_only", "csrf_token": csrf_of(no_sso)})
    assert response.status_code == 422 and "not set up on this server" in response.get_data(as_text=True)
    assert audit_rows(app, t.id, "settings.sign_in_policy") == []


def _break_glass(app, client, email: str):  # type: ignore[no-untyped-def]
    assert client.get("/sign-in/break-glass").status_code == 200
    response = client.post("/sign-in/break-glass", data={"email": email, "csrf_token": csrf_of(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in/code"
    run_jobs(app)
    return response


def test_an_owner_gets_in_by_break_glass_audited_and_the_other_owners_are_told(app, client, make_tenant):
    t = make_tenant()
    second_owner = f"second-{uuid.uuid4().hex[:6]}{AT}example.com"
    add_user(app, t, second_owner, "owner")
    _require_sso(app, t)
    _break_glass(app, client, t.owner_email)
    [mail] = _mail_to(app, t.owner_email)
    assert mail["subject"] == "Your Better Invoice break-glass sign-in code"
    response = type_code(client, latest_code(app, t.owner_email))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    [glass] = audit_rows(app, t.id, "auth.break_glass")
    assert glass.actor_id == str(t.owner_id) and glass.source_ip == "127.0.0.1"
    assert audit_rows(app, t.id, "auth.signed_in")[-1].after == {"method": "break_glass"}
    run_jobs(app)
    [told] = _mail_to(app, second_owner)
    assert "break-glass" in told["text"] and t.owner_email in told["text"]
    assert _mail_to(app, t.owner_email) == [mail]  # the owner who came in is not told about themself


def test_break_glass_is_for_owners_only(app, client, make_tenant):
    t = make_tenant()
    admin = f"admin-{uuid.uuid4().hex[:6]}{AT}example.com"
    add_user(app, t, admin, "admin")
    _require_sso(app, t)
    _break_glass(app, client, admin)
    assert _mail_to(app, admin) == []
    bad = client.post("/sign-in/break-glass", data={"email": "not an email", "csrf_token": csrf_of(client)})
    assert bad.status_code == 422 and "Enter your work email" in bad.get_data(as_text=True)


def test_an_email_in_several_workspaces_signs_in_by_code_only_where_codes_are_allowed(app, client, make_tenant):
    email = f"shared-{uuid.uuid4().hex[:8]}{AT}example.com"
    strict, relaxed = make_tenant("Alpha IT", email), make_tenant("Beta IT", email)
    _require_sso(app, strict)
    response = sign_in_with_code(app, client, email)
    assert response.headers["Location"] == "/"  # straight into the one workspace that takes codes
    assert "Beta IT" in client.get("/").get_data(as_text=True)
    assert "Alpha IT" not in client.get("/sign-in/choose").get_data(as_text=True)
    switch = client.post("/sign-in/choose", data={"tenant_id": str(strict.id), "csrf_token": csrf_of(client)})
    assert switch.status_code == 400
    assert "Beta IT" in client.get("/").get_data(as_text=True)
    assert relaxed.id != strict.id


def test_the_migration_downgrades_to_the_old_membership_lookup_and_upgrades_again(empty_database):  # noqa: F811
    import psycopg

    from app import dbadmin

    def lookup() -> tuple[str, str, bool]:
        with psycopg.connect(empty_database) as conn:
            return conn.execute("""select pg_get_function_result(p.oid), pg_get_userbyid(p.proowner), p.prosecdef
                                   from pg_proc p where p.proname = 'bi_user_memberships'""").fetchone()

    dbadmin.upgrade(empty_database)
    assert lookup() == ("TABLE(tenant_id uuid, tenant_name text, user_id uuid, role text, require_sso boolean)",
                        "bi_signin", True)
    dbadmin.downgrade(empty_database, "0005")
    assert lookup() == ("TABLE(tenant_id uuid, tenant_name text, user_id uuid, role text)", "bi_signin", True)
    dbadmin.upgrade(empty_database)
    assert "require_sso" in lookup()[0]
