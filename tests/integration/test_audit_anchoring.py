"""Audit chain anchoring: rows are HMAC-signed with a key outside the database, the first kept row is anchored to
the recorded retention boundary, and verify names a prefix removed outside retention."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from app.audit.log import GENESIS, Actor, ChainKeys, hashed_fields, record, row_hash
from app.audit.models import AuditEntry, RetentionBoundary
from app.audit.retention import purge_expired_rows
from app.audit.verify import verify_tenant
from app.config import Config, ConfigError
from app.db import make_session_factory
from app.tenancy import tenant_session
from tests.unit.test_config import GOOD

OLD = ChainKeys.from_config("old1:" + base64.b64encode(b"\x44" * 32).decode())
ROTATED = ChainKeys.from_config("new1:" + base64.b64encode(b"\x55" * 32).decode() + ","
                                "old1:" + base64.b64encode(b"\x44" * 32).decode())
NEW_ONLY = ChainKeys.from_config("new1:" + base64.b64encode(b"\x55" * 32).decode())


def _factory(app):  # type: ignore[no-untyped-def]
    return app.extensions["session_factory"]


def _bare_tenant(app) -> uuid.UUID:  # type: ignore[no-untyped-def]
    """A tenant with no audit rows yet, so a test can plant rows at the very start of its chain."""
    from app.tenants.models import Tenant

    tid = uuid.uuid4()
    with tenant_session(tid, _factory(app)) as session:
        session.add(Tenant(id=tid, name="Anchored"))
    return tid


def _write(app, tenant_id, n=1, keys=None, **kwargs) -> list[int]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, _factory(app)) as session:
        return [record(session, tenant_id, Actor.system(), f"test.anchor{i}", keys=keys, **kwargs).id
                for i in range(n)]


def _verify(app, tenant_id, keys=None):  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, _factory(app)) as session:
        return verify_tenant(session, tenant_id, keys)


def _as_attacker(owner_engine, tenant_id, statement: str, **params) -> None:  # type: ignore[no-untyped-def]
    """Raw SQL as the owner with the append-only trigger off: what someone with database access can do."""
    with owner_engine.begin() as conn:
        conn.execute(text("alter table audit_log disable trigger audit_log_append_only"))
        conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
        conn.execute(text(statement), {"t": str(tenant_id), **params})
        conn.execute(text("alter table audit_log enable trigger audit_log_append_only"))


def _purge(app) -> int:  # type: ignore[no-untyped-def]
    session = _factory(app)()
    try:
        removed = purge_expired_rows(session)
        session.commit()
    finally:
        session.close()
    return removed


def test_new_rows_are_hmac_signed_with_the_first_chain_key_and_numbered_in_their_chain(app, make_tenant):
    t = make_tenant()
    ids = _write(app, t.id, 3)
    with tenant_session(t.id, _factory(app)) as session:
        rows = session.execute(select(AuditEntry).where(AuditEntry.tenant_id == t.id).order_by(AuditEntry.id)).scalars().all()
        assert {r.key_id for r in rows} == {"c1"}  # the test config's first AUDIT_CHAIN_KEYS entry
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
        assert rows[0].prev_hash == GENESIS
        last = rows[-1]
        assert last.id == ids[-1]
        assert last.hash != row_hash(last.prev_hash, hashed_fields(last)), "still the unkeyed SHA-256"
    assert _verify(app, t.id) == (len(rows), None)


def test_rewriting_the_tail_and_rehashing_with_plain_sha256_is_detected(app, make_tenant, owner_engine):
    t = make_tenant()
    ids = _write(app, t.id, 3)
    _as_attacker(owner_engine, t.id, "update audit_log set action = 'forged' where id = :id", id=ids[-1])
    with tenant_session(t.id, _factory(app)) as session:
        forged = session.get(AuditEntry, ids[-1])
        rehashed = row_hash(forged.prev_hash, hashed_fields(forged))
    _as_attacker(owner_engine, t.id, "update audit_log set hash = :h where id = :id", h=rehashed, id=ids[-1])
    _checked, brk = _verify(app, t.id)
    assert brk is not None and brk.entry_id == ids[-1] and "keyed hash" in brk.reason


def test_passing_a_rewritten_row_off_as_an_unkeyed_one_is_detected(app, make_tenant, owner_engine):
    t = make_tenant()
    ids = _write(app, t.id, 3)
    _as_attacker(owner_engine, t.id, "update audit_log set action = 'forged', key_id = null, seq = null where id = :id",
                 id=ids[-1])
    with tenant_session(t.id, _factory(app)) as session:
        forged = session.get(AuditEntry, ids[-1])
        rehashed = row_hash(forged.prev_hash, hashed_fields(forged))
    _as_attacker(owner_engine, t.id, "update audit_log set hash = :h where id = :id", h=rehashed, id=ids[-1])
    _checked, brk = _verify(app, t.id)
    assert brk is not None and brk.entry_id == ids[-1] and "unkeyed row after the chain became keyed" in brk.reason


def test_deleting_a_prefix_as_the_owner_is_detected_and_reported(app, make_tenant, owner_engine):
    t = make_tenant()
    _write(app, t.id, 5)
    _as_attacker(owner_engine, t.id, "delete from audit_log where tenant_id = :t and seq <= 3")
    _checked, brk = _verify(app, t.id)
    assert brk is not None and brk.reason.startswith("rows 1-3 removed outside retention")

    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"tenant {t.id}" in result.output and "rows 1-3 removed outside retention" in result.output


def test_a_purge_through_the_retention_function_is_not_tampering_and_records_the_boundary(app):
    tid = _bare_tenant(app)
    now = datetime.now(UTC)
    _write(app, tid, 1, now=now - timedelta(days=120))
    removed_ids = _write(app, tid, 1, now=now - timedelta(days=95))
    _write(app, tid, 1, now=now - timedelta(days=10))
    assert _purge(app) >= 2
    _write(app, tid, 2)
    assert _verify(app, tid) == (3, None)
    with tenant_session(tid, _factory(app)) as session:
        boundary = session.get(RetentionBoundary, tid)
        assert (boundary.last_removed_id, boundary.last_removed_seq, boundary.removed_count) == (removed_ids[0], 2, 2)
        first = session.execute(select(AuditEntry).order_by(AuditEntry.id).limit(1)).scalar_one()
        assert first.seq == 3 and first.prev_hash == boundary.last_removed_hash
    assert _purge(app) >= 0
    assert _verify(app, tid) == (3, None)


def test_a_prefix_deleted_after_a_purge_is_reported_from_the_boundary_on(app, owner_engine):
    tid = _bare_tenant(app)
    _write(app, tid, 2, now=datetime.now(UTC) - timedelta(days=100))
    _write(app, tid, 4)
    _purge(app)
    _as_attacker(owner_engine, tid, "delete from audit_log where tenant_id = :t and seq <= 4")
    _checked, brk = _verify(app, tid)
    assert brk is not None and brk.reason.startswith("rows 3-4 removed outside retention")


def test_when_retention_removed_every_row_the_chain_goes_on_from_the_boundary(app):
    tid = _bare_tenant(app)
    _write(app, tid, 2, now=datetime.now(UTC) - timedelta(days=100))
    _purge(app)
    assert _verify(app, tid) == (0, None)
    _write(app, tid, 1)
    with tenant_session(tid, _factory(app)) as session:
        row = session.execute(select(AuditEntry)).scalar_one()
        assert row.seq == 3 and row.prev_hash == session.get(RetentionBoundary, tid).last_removed_hash
    assert _verify(app, tid) == (1, None)


def test_the_app_can_read_the_boundary_but_never_write_it(app):
    tid = _bare_tenant(app)
    with pytest.raises(Exception, match="permission denied"):
        with tenant_session(tid, _factory(app)) as session:
            session.add(RetentionBoundary(tenant_id=tid, last_removed_id=1, last_removed_hash="f" * 64))
            session.flush()


def test_rows_signed_with_the_old_key_still_verify_after_rotation(app):
    tid = _bare_tenant(app)
    _write(app, tid, 2, keys=OLD)
    _write(app, tid, 2, keys=ROTATED)
    with tenant_session(tid, _factory(app)) as session:
        key_ids = session.execute(select(AuditEntry.key_id).order_by(AuditEntry.id)).scalars().all()
    assert key_ids == ["old1", "old1", "new1", "new1"]
    assert _verify(app, tid, ROTATED) == (4, None)


def test_a_row_signed_with_an_unknown_key_id_is_reported(app):
    tid = _bare_tenant(app)
    ids = _write(app, tid, 2, keys=ROTATED)
    first_old = _write(app, tid, 1, keys=OLD)[0]
    assert _verify(app, tid, ROTATED) == (3, None)
    checked, brk = _verify(app, tid, NEW_ONLY)
    assert checked == len(ids) and brk is not None and brk.entry_id == first_old
    assert brk.reason == "signed with unknown key id 'old1'"


def test_unkeyed_rows_from_before_the_change_verify_only_before_the_first_keyed_row(app):
    tid = _bare_tenant(app)
    with tenant_session(tid, _factory(app)) as session:
        prev = "a" * 64  # its predecessors were purged before purges recorded a boundary
        for i in range(2):
            legacy = AuditEntry(tenant_id=tid, created_at=datetime.now(UTC), actor_type="system", actor_id=None,
                                actor_label="system", action=f"legacy{i}", target_type="", target_id="", before=None,
                                after=None, source_ip=None, user_agent=None, request_id=None, prev_hash=prev)
            legacy.hash = prev = row_hash(prev, hashed_fields(legacy))
            session.add(legacy)
            session.flush()
    keyed = _write(app, tid, 2)
    with tenant_session(tid, _factory(app)) as session:
        assert session.get(AuditEntry, keyed[0]).seq == 3
    assert _verify(app, tid) == (4, None)

    with tenant_session(tid, _factory(app)) as session:
        late = AuditEntry(tenant_id=tid, created_at=datetime.now(UTC), actor_type="system", actor_id=None,
                          actor_label="system", action="late-legacy", target_type="", target_id="", before=None,
                          after=None, source_ip=None, user_agent=None, request_id=None,
                          prev_hash=session.get(AuditEntry, keyed[-1]).hash)
        late.hash = row_hash(late.prev_hash, hashed_fields(late))
        session.add(late)
        session.flush()
        late_id = late.id
    _checked, brk = _verify(app, tid)
    assert brk is not None and brk.entry_id == late_id and "unkeyed row after the chain became keyed" in brk.reason


def test_a_session_without_chain_keys_refuses_to_write_an_audit_row(app, make_tenant):
    t = make_tenant()
    bare = make_session_factory(app.extensions["engine"])
    with pytest.raises(RuntimeError, match="audit chain keys"):
        with tenant_session(t.id, bare) as session:
            record(session, t.id, Actor.system(), "test.unsigned")


def test_chain_keys_never_show_their_secret_in_repr():
    assert "old1" in repr(OLD) and "DDDD" not in repr(OLD)
    assert base64.b64encode(b"\x44" * 32).decode() not in repr(OLD)


def test_production_refuses_to_start_without_chain_keys_or_with_the_development_key():
    env = {k: v for k, v in GOOD.items() if k != "AUDIT_CHAIN_KEYS"}
    with pytest.raises(ConfigError, match="AUDIT_CHAIN_KEYS"):
        Config.from_env(env)
    with pytest.raises(ConfigError, match="AUDIT_CHAIN_KEYS"):
        Config.from_env({**env, "AUDIT_CHAIN_KEYS": Config().AUDIT_CHAIN_KEYS})
    with pytest.raises(ConfigError, match="AUDIT_CHAIN_KEYS"):
        Config.from_env({**env, "AUDIT_CHAIN_KEYS": "k1:not-base64!"})
    assert Config.from_env({**env, "AUDIT_CHAIN_KEYS": "p1:" + base64.b64encode(b"\x66" * 32).decode()})
