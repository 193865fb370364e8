"""Member sync never hands an account to whoever controls ConnectWise.

Emails of existing users change only when an owner or admin accepts ConnectWise's proposal; owners' and admins'
rows are never touched by a sync; a deactivation made in the app is never undone by a sync; every user the sync
creates, deactivates or proposes a change for has its own audit row.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update

from app.connectwise.members import run_sync
from app.tenancy import tenant_session
from app.users.models import User
from tests.conftest import csrf_of, sign_in
from tests.integration.signin_helpers import AT, ask_for_code, audit_rows, outbox, sign_in_with_code

HX = {"HX-Request": "true"}
ROW_FIELDS = ("email", "name", "role", "active", "cw_member_id", "cw_identifier", "updated_at")


@pytest.fixture(autouse=True)
def _clean(redis_conn):  # type: ignore[no-untyped-def]
    return redis_conn


@pytest.fixture()
def tenants(app, make_tenant):  # type: ignore[no-untyped-def]
    """Tenants for one test; afterwards their simulator members stop being able to sign in.

    The simulator's members have the same emails in every tenant, and sign-in looks across tenants, so an active
    copy left behind here would hand a code to another test's deactivated member.
    """
    made = []

    def _make(*args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(make_tenant(*args, **kwargs))
        return made[-1]

    yield _make
    for t in made:
        with tenant_session(t.id, app.extensions["session_factory"]) as s:
            s.execute(update(User).where(User.email.like("%" + AT + "bettersim-it.example")).values(active=False))


def _members(sim):  # type: ignore[no-untyped-def]
    return sim.state.data["members"]


def _connect(client, sim, tenant) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, tenant)
    data = {"site": sim.url, "company_id": sim.company_id, "public_key": sim.public_key,
            "private_key": sim.private_key, "csrf_token": csrf_of(client)}
    assert client.post("/settings/connectwise/", data=data).status_code == 302


def _sync(app, tenant):  # type: ignore[no-untyped-def]
    with app.app_context():
        return run_sync(str(tenant.id))


def _users(app, tenant) -> list[User]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        users = s.execute(select(User).order_by(User.cw_member_id)).scalars().all()
        for u in users:
            s.expunge(u)
        return users


def _user(app, tenant, user_id) -> User:  # type: ignore[no-untyped-def]
    return next(u for u in _users(app, tenant) if u.id == user_id)


def _synced(app, tenant) -> list[User]:  # type: ignore[no-untyped-def]
    return [u for u in _users(app, tenant) if u.cw_member_id is not None and u.active]


def _set_role(app, tenant, user_id, role: str) -> None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        s.execute(update(User).where(User.id == user_id).values(role=role))


def _row(user: User) -> dict:
    return {f: getattr(user, f) for f in ROW_FIELDS}


def _new_email(sim, member_id: int, email: str) -> None:
    _members(sim).set_fields(member_id, {"officeEmail": email, "primaryEmail": email})


def _addr(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:6]}{AT}attacker.example"


def _open_proposals(app, tenant) -> list:  # type: ignore[no-untyped-def]
    from app.users.models import EmailChangeProposal

    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        rows = s.execute(select(EmailChangeProposal).where(EmailChangeProposal.status == "open")).scalars().all()
        for r in rows:
            s.expunge(r)
        return rows


@pytest.fixture()
def synced(app, client, tenants, fresh_sim):  # type: ignore[no-untyped-def]
    """A tenant connected to the simulator whose members were synced once as viewers (the owner's default role for
    new members); the owner is signed in on ``client``."""
    t = tenants()
    _connect(client, fresh_sim, t)
    _default_role(client, "viewer")
    _sync(app, t)
    return t


def _default_role(client, role: str):  # type: ignore[no-untyped-def]
    return client.post("/settings/users/new-members", data={"new_member_role": role, "csrf_token": csrf_of(client)})


def test_a_changed_email_for_a_viewer_becomes_a_proposal_and_the_user_keeps_their_email(app, synced, fresh_sim):
    viewer = _synced(app, synced)[0]
    new = _addr("takeover")
    _new_email(fresh_sim, viewer.cw_member_id, new)
    _sync(app, synced)
    assert _user(app, synced, viewer.id).email == viewer.email
    # The new address reaches no account: no code is mailed for it.
    ask_for_code(app, app.test_client(), new)
    assert [m for m in outbox(app) if m["to"] == new] == []
    [proposal] = _open_proposals(app, synced)
    assert proposal.user_id == viewer.id and proposal.proposed_email == new
    assert proposal.current_email == viewer.email


def test_an_owner_or_admin_row_is_untouched_by_any_connectwise_change(app, synced, fresh_sim):
    admin, owner = _synced(app, synced)[:2]
    _set_role(app, synced, admin.id, "admin")
    _set_role(app, synced, owner.id, "owner")
    before = {u.id: _row(u) for u in (_user(app, synced, admin.id), _user(app, synced, owner.id))}
    for user in (admin, owner):
        _members(fresh_sim).set_fields(user.cw_member_id, {"officeEmail": _addr("x"), "primaryEmail": _addr("y"),
                                                           "firstName": "Mallory", "inactiveFlag": True})
    _sync(app, synced)
    assert {u: _row(_user(app, synced, u)) for u in before} == before
    # Removed from ConnectWise altogether: still untouched.
    for user in (admin, owner):
        del _members(fresh_sim).records[user.cw_member_id]
    _sync(app, synced)
    assert {u: _row(_user(app, synced, u)) for u in before} == before
    assert _open_proposals(app, synced) == []


def test_an_owner_whose_email_matches_a_member_is_never_attached_to_it(app, client, tenants, fresh_sim):
    member = next(r for r in _members(fresh_sim).records.values() if not r["inactiveFlag"])
    t = tenants(email=member["officeEmail"])
    _connect(client, fresh_sim, t)
    _sync(app, t)
    owner = _user(app, t, t.owner_id)
    assert owner.cw_member_id is None and owner.email == member["officeEmail"]
    before = _row(owner)
    _members(fresh_sim).set_fields(member["id"], {"firstName": "Mallory", "inactiveFlag": True})
    _sync(app, t)
    new = _addr("owner")
    _new_email(fresh_sim, member["id"], new)
    _members(fresh_sim).set_fields(member["id"], {"inactiveFlag": False})
    _sync(app, t)
    assert _row(_user(app, t, t.owner_id)) == before
    assert _open_proposals(app, t) == []


def test_a_user_deactivated_in_the_app_stays_inactive_when_connectwise_says_active(app, client, synced, fresh_sim):
    viewer = _synced(app, synced)[0]
    response = client.post(f"/settings/users/{viewer.id}/active", data={"active": "false"},
                           headers={**HX, "X-CSRF-Token": csrf_of(client)})
    assert response.status_code == 200
    _sync(app, synced)
    assert _user(app, synced, viewer.id).active is False
    # Still inactive after ConnectWise flips the member off and on again.
    _members(fresh_sim).set_fields(viewer.cw_member_id, {"inactiveFlag": True})
    _sync(app, synced)
    _members(fresh_sim).set_fields(viewer.cw_member_id, {"inactiveFlag": False})
    _sync(app, synced)
    assert _user(app, synced, viewer.id).active is False


def test_a_user_deactivated_by_sync_comes_back_when_active_in_connectwise_again(app, synced, fresh_sim):
    viewer = _synced(app, synced)[0]
    _members(fresh_sim).set_fields(viewer.cw_member_id, {"inactiveFlag": True})
    assert _sync(app, synced).deactivated == 1
    assert _user(app, synced, viewer.id).active is False
    _members(fresh_sim).set_fields(viewer.cw_member_id, {"inactiveFlag": False})
    _sync(app, synced)
    assert _user(app, synced, viewer.id).active is True


def test_a_proposal_follows_connectwise_and_is_never_duplicated(app, synced, fresh_sim):
    viewer = _synced(app, synced)[0]
    first, second = _addr("first"), _addr("second")
    _new_email(fresh_sim, viewer.cw_member_id, first)
    _sync(app, synced)
    _sync(app, synced)
    [proposal] = _open_proposals(app, synced)
    assert proposal.proposed_email == first
    _new_email(fresh_sim, viewer.cw_member_id, second)
    _sync(app, synced)
    [changed] = _open_proposals(app, synced)
    assert changed.id == proposal.id and changed.proposed_email == second
    _new_email(fresh_sim, viewer.cw_member_id, viewer.email)
    _sync(app, synced)
    assert _open_proposals(app, synced) == []
    assert [e.after for e in audit_rows(app, synced.id, "connectwise.email_change_proposed")] == [{"email": first}]
    [moved] = audit_rows(app, synced.id, "connectwise.email_change_updated")
    assert moved.before == {"email": first} and moved.after == {"email": second}
    [gone] = audit_rows(app, synced.id, "connectwise.email_change_withdrawn")
    assert gone.target_id == str(viewer.id)


def _proposed(app, tenant, sim) -> tuple[User, str, object]:  # type: ignore[no-untyped-def]
    viewer = _synced(app, tenant)[0]
    new = _addr("new")
    _new_email(sim, viewer.cw_member_id, new)
    _sync(app, tenant)
    [proposal] = _open_proposals(app, tenant)
    return viewer, new, proposal


def test_an_owner_accepts_a_proposal_on_the_users_page_and_it_is_audited(app, client, synced, fresh_sim):
    viewer, new, proposal = _proposed(app, synced, fresh_sim)
    theirs = app.test_client()
    sign_in(theirs, synced, viewer.id)
    assert theirs.get("/").status_code == 200
    page = client.get("/settings/users/").get_data(as_text=True)
    assert f"ConnectWise says {viewer.name}'s email is now {new}" in page
    response = client.post(f"/settings/users/email-changes/{proposal.id}/accept",
                           headers={**HX, "X-CSRF-Token": csrf_of(client)})
    assert response.status_code == 200
    swapped = response.get_data(as_text=True)
    assert 'id="email-changes"' in swapped and f'id="user-{viewer.id}"' in swapped and 'hx-swap-oob="true"' in swapped
    assert _user(app, synced, viewer.id).email == new
    assert _open_proposals(app, synced) == []
    assert theirs.get("/").status_code == 302  # their sessions ended with the change
    [entry] = audit_rows(app, synced.id, "user.email_change_accepted")
    assert entry.before == {"email": viewer.email} and entry.after == {"email": new}
    assert entry.actor_id == str(synced.owner_id) and entry.target_id == str(viewer.id)
    assert new not in client.get("/settings/users/").get_data(as_text=True).split("<table")[0]
    # The next sync agrees with the user now: nothing new is proposed.
    _sync(app, synced)
    assert _open_proposals(app, synced) == []


def test_an_admin_rejects_a_proposal_and_it_stays_dismissed(app, client, synced, fresh_sim):
    viewer, new, proposal = _proposed(app, synced, fresh_sim)
    admin = _synced(app, synced)[1]
    _set_role(app, synced, admin.id, "admin")
    sign_in(client, synced, admin.id)
    response = client.post(f"/settings/users/email-changes/{proposal.id}/reject", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 200
    assert _user(app, synced, viewer.id).email == viewer.email
    assert _open_proposals(app, synced) == []
    assert new not in response.get_data(as_text=True)
    [entry] = audit_rows(app, synced.id, "user.email_change_rejected")
    assert entry.actor_id == str(admin.id) and entry.target_id == str(viewer.id)
    assert entry.before == {"proposed_email": new, "status": "open"} and entry.after == {"status": "rejected"}
    _sync(app, synced)  # ConnectWise still says so; a rejected proposal does not come back
    assert _open_proposals(app, synced) == []
    assert len(audit_rows(app, synced.id, "connectwise.email_change_proposed")) == 1


def test_accepting_is_refused_when_another_user_has_that_email(app, client, synced, fresh_sim):
    viewer, new, proposal = _proposed(app, synced, fresh_sim)
    client.post("/settings/users/", data={"email": new, "name": "Clash", "role": "viewer", "csrf_token": csrf_of(client)})
    url = f"/settings/users/email-changes/{proposal.id}/accept"
    response = client.post(url, data={"csrf_token": csrf_of(client)})
    assert response.status_code == 422 and "already uses" in response.get_data(as_text=True)
    inline = client.post(url, headers={**HX, "X-CSRF-Token": csrf_of(client)})
    assert "already uses" in inline.get_data(as_text=True)
    assert _user(app, synced, viewer.id).email == viewer.email
    assert len(_open_proposals(app, synced)) == 1
    assert audit_rows(app, synced.id, "user.email_change_accepted") == []


def test_a_proposal_for_someone_promoted_to_admin_cannot_be_accepted(app, client, synced, fresh_sim):
    viewer, _new, proposal = _proposed(app, synced, fresh_sim)
    _set_role(app, synced, viewer.id, "admin")
    response = client.post(f"/settings/users/email-changes/{proposal.id}/accept", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 422
    assert _user(app, synced, viewer.id).email == viewer.email
    _sync(app, synced)  # and the sync withdraws it
    assert _open_proposals(app, synced) == []


@pytest.mark.parametrize("role", ["viewer", "reviewer", "billing_manager"])
def test_only_owners_and_admins_decide_proposals(app, synced, fresh_sim, role):
    viewer, _new, proposal = _proposed(app, synced, fresh_sim)
    someone = _synced(app, synced)[1]
    _set_role(app, synced, someone.id, role)
    other = app.test_client()
    sign_in(other, synced, someone.id)
    for action in ("accept", "reject"):
        response = other.post(f"/settings/users/email-changes/{proposal.id}/{action}",
                              data={"csrf_token": csrf_of(other)})
        assert response.status_code == 403
    assert _user(app, synced, viewer.id).email == viewer.email
    assert len(_open_proposals(app, synced)) == 1


def test_another_tenants_proposal_is_not_found(app, synced, fresh_sim, make_tenant):
    _viewer, _new, proposal = _proposed(app, synced, fresh_sim)
    other_tenant = make_tenant("Other MSP")
    other = app.test_client()
    sign_in(other, other_tenant)
    for action in ("accept", "reject"):
        assert other.post(f"/settings/users/email-changes/{proposal.id}/{action}",
                          data={"csrf_token": csrf_of(other)}).status_code == 404
        assert other.post(f"/settings/users/email-changes/not-a-uuid/{action}",
                          data={"csrf_token": csrf_of(other)}).status_code == 404
    assert len(_open_proposals(app, synced)) == 1


def test_each_user_the_sync_creates_deactivates_or_proposes_for_has_its_own_audit_row(app, synced, fresh_sim):
    created = _synced(app, synced)
    rows = audit_rows(app, synced.id, "connectwise.member_created")
    assert sorted(r.target_id for r in rows) == sorted(str(u.id) for u in created)
    by_id = {str(u.id): u for u in created}
    assert all(r.before is None and r.after["email"] == by_id[r.target_id].email for r in rows)
    gone, moved = created[0], created[1]
    _members(fresh_sim).set_fields(gone.cw_member_id, {"inactiveFlag": True})
    new = _addr("moved")
    _new_email(fresh_sim, moved.cw_member_id, new)
    _sync(app, synced)
    [off] = audit_rows(app, synced.id, "connectwise.member_deactivated")
    assert off.target_id == str(gone.id) and off.before == {"active": True} and off.after == {"active": False}
    [proposed] = audit_rows(app, synced.id, "connectwise.email_change_proposed")
    assert proposed.target_id == str(moved.id)
    assert proposed.before == {"email": moved.email} and proposed.after == {"email": new}
    assert len(audit_rows(app, synced.id, "connectwise.members_synced")) == 2


def test_the_proposed_user_signs_in_with_the_new_email_only_after_acceptance(app, client, synced, fresh_sim):
    viewer, new, proposal = _proposed(app, synced, fresh_sim)
    client.post(f"/settings/users/email-changes/{proposal.id}/accept", data={"csrf_token": csrf_of(client)})
    theirs = app.test_client()
    assert sign_in_with_code(app, theirs, new).status_code == 302
    assert theirs.get("/").status_code == 200


def test_a_script_in_a_connectwise_email_comes_back_inert_on_the_users_page(app, client, synced, fresh_sim):
    viewer = _synced(app, synced)[0]
    _new_email(fresh_sim, viewer.cw_member_id, "<script>alert(1)</script>" + AT + "x.example")
    _sync(app, synced)
    page = client.get("/settings/users/").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page


def _unique_members(sim) -> None:  # type: ignore[no-untyped-def]
    """Give the simulator's members addresses no other test's tenant holds (sign-in looks across tenants)."""
    for m in _members(sim).iter():
        local = (m.get("officeEmail") or m.get("primaryEmail") or "").split(AT)[0]
        if local:
            _new_email(sim, m["id"], f"{local}-{uuid.uuid4().hex[:6]}{AT}bettersim-it.example")


def test_new_members_arrive_listed_with_no_access_by_default(app, client, tenants, fresh_sim):
    t = tenants()
    _connect(client, fresh_sim, t)
    assert _sync(app, t).created > 5
    synced = _synced(app, t)
    assert synced and {u.role for u in synced} == {"no_access"}
    page = client.get("/settings/users/").get_data(as_text=True)
    row = page.split(f'id="user-{synced[0].id}"', 1)[1].split("</tr>", 1)[0]
    assert synced[0].email in row and "No access" in row
    [created] = [r for r in audit_rows(app, t.id, "connectwise.member_created") if r.target_id == str(synced[0].id)]
    assert created.after["role"] == "no_access"


def test_with_a_default_role_new_members_get_it_and_existing_users_keep_theirs(app, client, tenants, fresh_sim):
    t = tenants()
    _connect(client, fresh_sim, t)
    first = next(m for m in _members(fresh_sim).iter() if m.get("officeEmail") and not m.get("inactiveFlag"))
    # Someone the owner added by hand before the first sync, with the member's address: linked, role kept.
    client.post("/settings/users/", data={"email": first["officeEmail"], "name": "Kept", "role": "billing_manager",
                                          "csrf_token": csrf_of(client)})
    assert _default_role(client, "reviewer").status_code == 302
    _sync(app, t)
    synced = _synced(app, t)
    kept = next(u for u in synced if u.cw_member_id == first["id"])
    assert kept.role == "billing_manager"
    assert {u.role for u in synced if u.id != kept.id} == {"reviewer"}
    [entry] = audit_rows(app, t.id, "tenant.new_member_role_changed")
    assert entry.before == {"new_member_role": "no_access"} and entry.after == {"new_member_role": "reviewer"}
    assert entry.actor_id == str(t.owner_id)


@pytest.mark.parametrize("role", ["owner", "admin", "superuser"])
def test_a_privileged_or_unknown_role_is_never_a_default(app, client, tenants, fresh_sim, role):
    t = tenants()
    _connect(client, fresh_sim, t)
    response = _default_role(client, role)
    assert response.status_code == 422 and "given by hand only" in response.get_data(as_text=True)
    assert audit_rows(app, t.id, "tenant.new_member_role_changed") == []
    _sync(app, t)
    assert {u.role for u in _synced(app, t)} == {"no_access"}


def test_a_privileged_default_written_behind_the_pages_back_is_still_not_handed_out(app, client, tenants, fresh_sim):
    from app.tenants.models import TenantSettings

    t = tenants()
    _connect(client, fresh_sim, t)
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        s.execute(update(TenantSettings).values(new_member_role="admin"))  # the column's CHECK takes admin
    _sync(app, t)
    assert {u.role for u in _synced(app, t)} == {"no_access"}


def test_only_an_owner_sets_the_default_role(app, client, tenants, fresh_sim):
    t = tenants()
    _connect(client, fresh_sim, t)
    admin = app.test_client()
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        user = User(id=uuid.uuid4(), tenant_id=t.id, email=_addr("admin"), role="admin", active=True)
        s.add(user)
    sign_in(admin, t, user.id)
    page = admin.get("/settings/users/").get_data(as_text=True)
    assert "Only an owner can change this" in page and 'name="new_member_role"' not in page
    refused = admin.post("/settings/users/new-members", data={"new_member_role": "viewer",
                                                              "csrf_token": csrf_of(admin)})
    assert refused.status_code == 403
    assert audit_rows(app, t.id, "tenant.new_member_role_changed") == []


def _stable(html: str) -> str:
    """A page without what differs on every request anyway (its CSRF token, its request id)."""
    import re

    return re.sub(r"[0-9a-f]{32}", "ID", re.sub(r'(name="csrf_token" value=")[^"]*', r"\1", html))


def test_a_member_without_access_cannot_sign_in_and_gets_the_same_answer_as_an_unknown_email(
        app, client, tenants, fresh_sim):
    t = tenants()
    _connect(client, fresh_sim, t)
    _unique_members(fresh_sim)
    _sync(app, t)
    member = _synced(app, t)[0]
    assert member.role == "no_access" and member.active
    unknown = f"nobody-{uuid.uuid4().hex[:6]}{AT}bettersim-it.example"
    answers = []
    for email in (member.email, unknown):
        app.extensions["redis"].delete("bi:dev-outbox")
        browser = app.test_client()
        asked = ask_for_code(app, browser, email)
        code_page = browser.get(asked.headers["Location"]).get_data(as_text=True)
        answers.append((asked.status_code, asked.headers["Location"], _stable(code_page.replace(email, "EMAIL"))))
        assert outbox(app) == []  # no code, and no other mail that would tell the two apart
    assert answers[0] == answers[1]
    assert answers[0][0] == 302
