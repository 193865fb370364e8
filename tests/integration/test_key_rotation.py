"""`flask --app wsgi keys rotate`: old ciphertexts stay readable and end up under the newest key."""

from __future__ import annotations

import base64
import uuid

from sqlalchemy import LargeBinary, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.connectwise.models import Connection
from app.db import encrypted
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


def test_rotation_finds_every_encrypted_column_declared_beside_its_model():
    import app.models  # noqa: F401
    from app.db import Base
    from app.security.rotation import registered_columns

    found = {(c.model.__tablename__, c.attribute, c.field) for c in registered_columns()}
    assert {("connectwise_connections", "public_key_enc", "public_key"),
            ("connectwise_connections", "private_key_enc", "private_key")} <= found
    ciphertext_columns = {(table.name, column.name) for table in Base.metadata.tables.values()
                          for column in table.columns if column.name.endswith("_enc")}
    assert {(table, attribute) for table, attribute, _ in found} == ciphertext_columns


def test_a_column_marked_encrypted_in_a_new_model_is_rotated_without_listing_it():
    from app.security.rotation import registered_columns

    class Scratch(DeclarativeBase):
        pass

    class Vault(Scratch):
        __tablename__ = "vault"
        id: Mapped[int] = mapped_column(primary_key=True)
        token_enc: Mapped[bytes] = mapped_column(LargeBinary, info=encrypted("token"))
        note: Mapped[str] = mapped_column()

    assert [(c.model, c.attribute, c.field) for c in registered_columns(Scratch)] == [(Vault, "token_enc", "token")]
