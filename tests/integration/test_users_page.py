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


def test_a_role_change_says_saved_in_a_toast(app, client, make_tenant):
    t = make_tenant()
    viewer = _add(app, t, "viewer")
    sign_in(client, t)
    html = client.post(f"/settings/users/{viewer.id}/role", data={"role": "billing_manager"},
                       headers={**HX, "X-CSRF-Token": csrf_of(client)}).get_data(as_text=True)
    toast = html.split('id="toasts" hx-swap-oob="beforeend"', 1)[1]
    assert f"Saved: {viewer.email} is now Billing manager." in toast
    # Changing someone else's role, even down, is not asked about: it is not your own access.
    html = client.post(f"/settings/users/{viewer.id}/role", data={"role": "no_access"},
                       headers={**HX, "X-CSRF-Token": csrf_of(client)}).get_data(as_text=True)
    assert "Continue?" not in html and _get(app, t, viewer.id).role == "no_access"


def test_reducing_your_own_role_asks_first_and_only_the_confirmation_applies_it(app, client, make_tenant):
    t = make_tenant()
    _add(app, t, "owner")  # so the first owner may step down
    sign_in(client, t)
    token = csrf_of(client)
    asked = client.post(f"/settings/users/{t.owner_id}/role", data={"role": "reviewer"},
                        headers={**HX, "X-CSRF-Token": token})
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "You will lose:" in html and "Continue?" in html
    assert "manage users and their roles" in html and "change the branding" in html
    assert 'name="confirm" value="yes"' in html and "confirm(" not in html  # a server step, no script dialog
    assert _get(app, t, t.owner_id).role == "owner" and audit_rows(app, t.id, "user.role_changed") == []
    cancel = client.get(f"/settings/users/{t.owner_id}/row", headers=HX).get_data(as_text=True)
    assert "Continue?" not in cancel and 'name="role"' in cancel
    done = client.post(f"/settings/users/{t.owner_id}/role", data={"role": "reviewer", "confirm": "yes"},
                       headers={**HX, "X-CSRF-Token": token})
    assert _get(app, t, t.owner_id).role == "reviewer"
    # No longer allowed on this page: sent where they still may be, and told it was saved.
    assert done.headers["HX-Redirect"] == "/"
    assert "Saved: you are now Reviewer." in client.get("/").get_data(as_text=True)
    [entry] = audit_rows(app, t.id, "user.role_changed")
    assert entry.before == {"role": "owner"} and entry.after == {"role": "reviewer"}


def test_without_javascript_the_confirmation_is_a_page_of_its_own(app, client, make_tenant):
    t = make_tenant()
    admin = _add(app, t, "admin")
    sign_in(client, t, admin.id)
    html = client.post(f"/settings/users/{admin.id}/role",
                       data={"role": "viewer", "csrf_token": csrf_of(client)}).get_data(as_text=True)
    assert "You will lose:" in html and "<h1>Users</h1>" in html
    assert _get(app, t, admin.id).role == "admin"


def test_raising_or_keeping_your_own_role_is_not_asked_about(app, client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    html = client.post(f"/settings/users/{t.owner_id}/role", data={"role": "owner"},
                       headers={**HX, "X-CSRF-Token": csrf_of(client)}).get_data(as_text=True)
    assert "Continue?" not in html


def test_the_page_says_in_a_sentence_what_each_role_may_do(app, client, make_tenant):
    from markupsafe import escape

    from app.auth.roles import PERMISSION_PHRASES, PERMISSIONS, ROLE_LABELS, builds_on, role_sentence
    from app.users.models import ROLES

    assert set(PERMISSION_PHRASES) == set(PERMISSIONS)  # a new permission needs its phrase
    assert set(ROLE_LABELS) == set(ROLES)
    t = make_tenant()
    sign_in(client, t)
    page = client.get("/settings/users/").get_data(as_text=True)
    roles = page.split('id="roles"', 1)[1].split("</section>", 1)[0]
    def described(role: str) -> set[str]:
        """The permissions a role's sentence speaks of, following "Everything a <role> may" down."""
        sentence = role_sentence(role)
        said = {p for p, phrase in PERMISSION_PHRASES.items() if phrase in sentence}
        base = builds_on(role)
        if base is not None:
            assert f"Everything a{'n' if ROLE_LABELS[base][0] in 'AEIOU' else ''} {ROLE_LABELS[base].lower()} may" \
                in sentence
            said |= described(base)
        return said

    for role in ROLES:
        sentence = role_sentence(role)
        assert sentence and f"<strong>{ROLE_LABELS[role]}</strong>: {escape(sentence)}" in roles
        assert described(role) == {p for p, allowed in PERMISSIONS.items() if role in allowed}, role
    assert "cannot sign in" in role_sentence("no_access")


def test_moving_someone_to_no_access_ends_their_sessions_and_stops_their_sign_in(app, client, make_tenant):
    from tests.integration.signin_helpers import ask_for_code, outbox

    t = make_tenant()
    viewer = _add(app, t, "viewer")
    theirs = app.test_client()
    assert sign_in_with_code(app, theirs, viewer.email).status_code == 302
    assert theirs.get("/").status_code == 200
    sign_in(client, t)
    client.post(f"/settings/users/{viewer.id}/role", data={"role": "no_access"},
                headers={**HX, "X-CSRF-Token": csrf_of(client)})
    assert app.extensions["redis"].scard(f"bi:user-sess:{t.id}:{viewer.id}") == 0
    assert theirs.get("/").status_code == 302
    app.extensions["redis"].delete("bi:dev-outbox")
    ask_for_code(app, app.test_client(), viewer.email)
    assert outbox(app) == []
    page = client.get("/settings/users/").get_data(as_text=True)
    assert viewer.email in page and "No access" in page.split(f'id="user-{viewer.id}"', 1)[1].split("</tr>", 1)[0]
