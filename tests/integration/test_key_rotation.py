"""`flask --app wsgi keys rotate`: old ciphertexts stay readable and end up under the newest key."""

from __future__ import annotations

import base64
import uuid

from sqlalchemy import select

from app.connectwise.models import Connection
from app.security.crypto import FieldRef, Keyring
from app.tenancy import tenant_session

OLD = ("k1", b"\x11" * 32)  # the second key of the test config's ENCRYPTION_KEYS
NEW_ID = "k2"


def _store_with_old_key(app, tenant_id) -> uuid.UUID:  # type: ignore[no-untyped-def]
    old_ring = Keyring([OLD])
    conn_id = uuid.uuid4()
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        session.add(Connection(
            id=conn_id, tenant_id=tenant_id, site="https://cw.example", company_id="acme",
            public_key_enc=old_ring.encrypt("pub-123", FieldRef(tenant_id, "connectwise_connections", conn_id,
                                                                "public_key")),
            private_key_enc=old_ring.encrypt("priv-456", FieldRef(tenant_id, "connectwise_connections", conn_id,
                                                                  "private_key"))))
    return conn_id


def test_rotation_reencrypts_everything_under_the_newest_key_and_keeps_it_readable(app, make_tenant):
    tenants = [make_tenant(), make_tenant()]
    ids = {t.id: _store_with_old_key(app, t.id) for t in tenants}
    result = app.test_cli_runner().invoke(args=["keys", "rotate", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    ring = app.extensions["keyring"]
    for tenant_id, conn_id in ids.items():
        with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
            row = session.execute(select(Connection).where(Connection.id == conn_id)).scalar_one()
            assert ring.key_id_of(row.private_key_enc) == NEW_ID
            assert ring.key_id_of(row.public_key_enc) == NEW_ID
            ref = FieldRef(tenant_id, "connectwise_connections", conn_id, "private_key")
            assert ring.decrypt(row.private_key_enc, ref) == "priv-456"
            assert b"priv-456" not in row.private_key_enc


def test_rotation_is_resumable_and_idempotent(app, make_tenant):
    t = make_tenant()
    _store_with_old_key(app, t.id)
    first = app.test_cli_runner().invoke(args=["keys", "rotate"])
    second = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert first.exit_code == 0 and second.exit_code == 0
    assert "re-encrypted 0 values" in second.output
    assert base64.b64encode(b"x")
