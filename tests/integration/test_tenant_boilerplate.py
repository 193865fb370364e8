"""Per-tenant boilerplate written once: the unbound session for pre-tenant functions, and the fan-out over tenants."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.db import session_tenant
from app.tenancy import all_tenant_ids, no_tenant_session, tenant_session
from app.users.models import User
from tests.conftest import csrf_of, sign_in

APP_DIR = Path(__file__).resolve().parents[2] / "app"
# The only modules that may call a session factory: where it is made, and where sessions are opened.
SESSION_OPENERS = {"app/db.py", "app/tenancy.py"}


def _calls_a_session_factory(node: ast.Call) -> bool:
    """Whether a call opens a session: factory(), f()(), extensions["session_factory"](), Session(...), ..."""
    func = node.func
    if isinstance(func, ast.Call):  # a getter's factory called at once: _factory()(), session_factory()()
        inner = func.func
        name = inner.id if isinstance(inner, ast.Name) else inner.attr if isinstance(inner, ast.Attribute) else ""
        return name.endswith("factory")
    if isinstance(func, ast.Subscript):  # extensions["session_factory"]()
        return isinstance(func.slice, ast.Constant) and "session" in str(func.slice.value)
    if isinstance(func, ast.Attribute):  # services.session_factory(), orm.Session(...)
        return func.attr in {"session_factory", "factory", "Session", "sessionmaker"}
    return isinstance(func, ast.Name) and func.id in {"factory", "Session", "sessionmaker"}


def _session_openers() -> list[str]:
    found = []
    for path in sorted(APP_DIR.rglob("*.py")):
        where = str(path.relative_to(APP_DIR.parent))
        if where in SESSION_OPENERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), where)):
            if isinstance(node, ast.Call) and _calls_a_session_factory(node):
                found.append(f"{where}:{node.lineno}")
    return found


def test_only_the_tenancy_module_opens_sessions():
    assert _session_openers() == []


def test_the_source_check_sees_each_way_of_opening_a_session():
    opening = ("factory()()", "session = factory()", "s = current_app.extensions['session_factory']()",
               "s = services.session_factory()", "s = Session(bind=engine)", "s = orm.sessionmaker(bind=engine)()")
    passing = ("with tenant_session(tid, factory) as s: pass", "with no_tenant_session(session_factory()) as s: pass",
               "factory = make_session_factory(engine)", "value = type(current)(raw)", "getattr(module, name)()")
    for source in opening:
        assert any(isinstance(n, ast.Call) and _calls_a_session_factory(n) for n in ast.walk(ast.parse(source))), source
    for source in passing:
        assert not any(isinstance(n, ast.Call) and _calls_a_session_factory(n)
                       for n in ast.walk(ast.parse(source))), source


def test_no_tenant_session_is_unbound_and_commits_what_it_did(app, make_tenant):
    t = make_tenant()
    with no_tenant_session(app.extensions["session_factory"]) as session:
        assert session_tenant(session) is None
        assert session.execute(select(User)).all() == []  # no tenant: RLS shows nothing
        assert session.execute(text("select current_setting('app.tenant_id', true)")).scalar() in ("", None)
        ids = [str(i) for i in session.execute(text("select * from bi_tenant_ids()")).scalars()]
    assert str(t.id) in ids


def test_no_tenant_session_rolls_back_on_error_and_refuses_a_bound_session(app):
    factory = app.extensions["session_factory"]
    with pytest.raises(RuntimeError), no_tenant_session(factory) as session:
        session.execute(text("select 1"))
        raise RuntimeError("boom")

    def bound_factory():  # type: ignore[no-untyped-def]
        session = factory()
        session.info["tenant_id"] = str(uuid.uuid4())
        return session

    with pytest.raises(RuntimeError, match="no tenant"), no_tenant_session(bound_factory):
        pass


def test_all_tenant_ids_lists_every_tenant(app, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    ids = all_tenant_ids(app.extensions["session_factory"])
    assert {str(a.id), str(b.id)} <= set(ids)
    assert all(isinstance(i, str) for i in ids)


def test_fan_out_runs_a_step_per_tenant_in_that_tenants_session(app, make_tenant):
    from app.jobs.fanout import fan_out

    a, b = make_tenant("A"), make_tenant("B")
    seen: dict[str, str | None] = {}
    users_seen: dict[str, set[str]] = {}

    def step(session, tenant_id):  # type: ignore[no-untyped-def]
        seen[tenant_id] = session_tenant(session)
        users_seen[tenant_id] = set(map(str, session.execute(select(User.tenant_id)).scalars().all()))
        return tenant_id == str(a.id)

    # Other tests' tenants are in the database too (some without users), so every step must see at most its own
    # rows, and the two made here exactly theirs.
    done = fan_out(step, app.extensions["session_factory"])
    assert seen[str(a.id)] == str(a.id) and seen[str(b.id)] == str(b.id)
    assert all(found <= {tid} for tid, found in users_seen.items())  # RLS: this tenant's rows only
    assert users_seen[str(a.id)] == {str(a.id)} and users_seen[str(b.id)] == {str(b.id)}
    assert done == 1  # only the steps that did something count


def test_fan_out_keeps_going_past_a_failing_tenant_then_says_so(app, make_tenant):
    from app.jobs.fanout import FanOutFailed, fan_out

    a, b = make_tenant("A"), make_tenant("B")
    ran: list[str] = []

    def step(session, tenant_id):  # type: ignore[no-untyped-def]
        ran.append(tenant_id)
        if tenant_id == str(a.id):
            session.execute(text("select 1/0"))
        return True

    with pytest.raises(FanOutFailed) as failed:
        fan_out(step, app.extensions["session_factory"])
    assert str(b.id) in ran and str(a.id) in ran
    assert failed.value.failed == [str(a.id)] and failed.value.done >= 1
    assert "division" not in str(failed.value)  # counts and ids only, never what the step saw


def test_fan_out_commits_each_tenants_work(app, make_tenant):
    from app.jobs.fanout import fan_out

    t = make_tenant("Renamed")

    def step(session, tenant_id):  # type: ignore[no-untyped-def]
        if tenant_id != str(t.id):
            return False
        session.execute(select(User)).scalars().first().name = "Fanned Out"
        return True

    assert fan_out(step, app.extensions["session_factory"]) == 1
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        assert session.execute(select(User.name)).scalar_one() == "Fanned Out"


def test_member_sync_fan_out_queues_a_sync_for_each_connected_tenant_only(app, client, make_tenant, redis_conn,
                                                                           fresh_sim):
    from app.connectwise.members import sync_all_tenants
    from app.jobs.queue import get_queue

    connected, bare = make_tenant("Connected"), make_tenant("Bare")
    sign_in(client, connected)
    data = {"site": fresh_sim.url, "company_id": fresh_sim.company_id, "public_key": fresh_sim.public_key,
            "private_key": fresh_sim.private_key, "csrf_token": csrf_of(client)}
    assert client.post("/settings/connectwise/", data=data).status_code == 302
    redis_conn.flushdb()
    with app.app_context():
        sync_all_tenants()
    queued = [job.args[0] for job in get_queue(redis_conn, "connectwise").get_jobs()]
    assert str(connected.id) in queued and str(bare.id) not in queued
