"""The users page: roles and deactivation change at once, are audited with before/after, and keep an owner."""

from __future__ import annotations

import uuid

import pytest

from app.tenancy import tenant_session
from app.users.models import User
from tests.conftest import csrf_of, sign_in
from tests.integration.signin_helpers import AT, audit_rows, sign_in_with_code

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _clean(redis_conn):  # type: ignore[no-untyped-def]
    return redis_conn


def _add(app, tenant, role: str, email: str | None = None) -> User:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        user = User(id=uuid.uuid4(), tenant_id=tenant.id, email=email or f"{role}-{uuid.uuid4().hex[:6]}{AT}x.example",
                    name=role.title(), role=role, active=True)
        s.add(user)
        s.flush()
        s.expunge(user)
        return user


def _get(app, tenant, user_id) -> User:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        user = s.get(User, user_id)
        s.expunge(user)
        return user


def test_an_owner_changes_a_role_inline_and_it_is_audited(app, client, make_tenant):
    t = make_tenant()
    viewer = _add(app, t, "viewer")
    sign_in(client, t)
    response = client.post(f"/settings/users/{viewer.id}/role", data={"role": "reviewer"},
                           headers={**HX, "X-CSRF-Token": csrf_of(client)})
    assert response.status_code == 200 and f'id="user-{viewer.id}"' in response.get_data(as_text=True)
    assert _get(app, t, viewer.id).role == "reviewer"
    [entry] = audit_rows(app, t.id, "user.role_changed")
    assert entry.before == {"role": "viewer"} and entry.after == {"role": "reviewer"}
    assert entry.actor_id == str(t.owner_id) and entry.source_ip == "127.0.0.1"


def test_the_last_owner_cannot_be_demoted_or_deactivated(app, client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    token = csrf_of(client)
    demote = client.post(f"/settings/users/{t.owner_id}/role", data={"role": "admin"}, headers={**HX, "X-CSRF-Token": token})
    assert "last owner" in demote.get_data(as_text=True)
    off = client.post(f"/settings/users/{t.owner_id}/active", data={"active": "false"},
                      headers={**HX, "X-CSRF-Token": token})
    assert "last owner" in off.get_data(as_text=True)
    owner = _get(app, t, t.owner_id)
    assert owner.role == "owner" and owner.active
    # With a second owner, the first may step down (once they confirm they lose an owner's rights).
    second = _add(app, t, "owner")
    client.post(f"/settings/users/{t.owner_id}/role", data={"role": "admin"}, headers={**HX, "X-CSRF-Token": token})
    assert _get(app, t, t.owner_id).role == "owner"
    client.post(f"/settings/users/{t.owner_id}/role", data={"role": "admin", "confirm": "yes"},
                headers={**HX, "X-CSRF-Token": token})
    assert _get(app, t, t.owner_id).role == "admin" and _get(app, t, second.id).role == "owner"


def test_an_admin_cannot_make_anyone_an_owner(app, client, make_tenant):
    t = make_tenant()
    admin = _add(app, t, "admin")
    viewer = _add(app, t, "viewer")
    sign_in(client, t, admin.id)
    response = client.post(f"/settings/users/{viewer.id}/role", data={"role": "owner"},
                           headers={**HX, "X-CSRF-Token": csrf_of(client)})
    assert "Only an owner" in response.get_data(as_text=True)
    assert _get(app, t, viewer.id).role == "viewer"


def test_deactivating_a_user_ends_all_their_sessions_and_blocks_sign_in(app, client, make_tenant):
    t = make_tenant()
    member = _add(app, t, "reviewer")
    theirs = app.test_client()
    sign_in_with_code(app, theirs, member.email)
    assert theirs.get("/").status_code == 200
    sign_in(client, t)
    client.post(f"/settings/users/{member.id}/active", data={"active": "false"},
                headers={**HX, "X-CSRF-Token": csrf_of(client)})
    assert theirs.get("/").status_code == 302
    assert app.extensions["redis"].scard(f"bi:user-sess:{t.id}:{member.id}") == 0
    [entry] = audit_rows(app, t.id, "user.deactivated")
    assert entry.before == {"active": True} and entry.after == {"active": False}


def test_adding_a_user_by_email(app, client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    email = f"new-{uuid.uuid4().hex[:6]}{AT}x.example"
    client.post("/settings/users/", data={"email": email, "name": "Nia", "role": "reviewer", "csrf_token": csrf_of(client)})
    assert email in client.get("/settings/users/").get_data(as_text=True)
    again = client.post("/settings/users/", data={"email": email.upper(), "role": "viewer", "csrf_token": csrf_of(client)})
    assert again.status_code == 422 and "already a user" in again.get_data(as_text=True)
    bad = client.post("/settings/users/", data={"email": "<script>", "role": "viewer", "csrf_token": csrf_of(client)})
    assert bad.status_code == 422 and "<script>" not in bad.get_data(as_text=True).split("<main")[1].split("value=")[0]


def test_an_unknown_role_is_refused(app, client, make_tenant):
    t = make_tenant()
    viewer = _add(app, t, "viewer")
    sign_in(client, t)
    response = client.post(f"/settings/users/{viewer.id}/role", data={"role": "superuser"},
                           headers={**HX, "X-CSRF-Token": csrf_of(client)})
    assert "Choose one of the listed roles" in response.get_data(as_text=True)
    assert _get(app, t, viewer.id).role == "viewer"
