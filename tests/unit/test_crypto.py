"""AES-256-GCM keyring: binding, tampering, rotation."""

from __future__ import annotations

import base64
import os
import uuid

import pytest

from app.config import ConfigError, parse_encryption_keys
from app.security.crypto import DecryptionError, FieldRef, Keyring

K1 = ("k1", os.urandom(32))
K2 = ("k2", os.urandom(32))
TENANT = uuid.uuid4()
REF = FieldRef(TENANT, "connectwise_connections", uuid.uuid4(), "private_key")


def test_ciphertext_never_contains_the_plaintext_and_round_trips():
    ring = Keyring([K1])
    secret = "super-secret-private-key-value"
    blob = ring.encrypt(secret, REF)
    assert secret.encode() not in blob
    assert base64.b64encode(secret.encode()) not in blob
    assert ring.decrypt(blob, REF) == secret


def test_each_encryption_uses_a_fresh_nonce():
    ring = Keyring([K1])
    assert ring.encrypt("same", REF) != ring.encrypt("same", REF)


def test_key_id_is_stored_with_the_ciphertext():
    assert Keyring([K1]).key_id_of(Keyring([K1]).encrypt("x", REF)) == "k1"


@pytest.mark.parametrize("other", [
    FieldRef(uuid.uuid4(), REF.table, REF.record_id, REF.field),
    FieldRef(REF.tenant_id, REF.table, uuid.uuid4(), REF.field),
    FieldRef(REF.tenant_id, "other_table", REF.record_id, REF.field),
    FieldRef(REF.tenant_id, REF.table, REF.record_id, "public_key"),
], ids=["wrong-tenant", "wrong-record", "wrong-table", "wrong-field"])
def test_a_ciphertext_moved_to_another_tenant_record_or_field_fails_to_decrypt(other):
    ring = Keyring([K1])
    with pytest.raises(DecryptionError):
        ring.decrypt(ring.encrypt("secret", REF), other)


def test_a_flipped_bit_fails_to_decrypt():
    ring = Keyring([K1])
    blob = bytearray(ring.encrypt("secret", REF))
    for position in (len(blob) - 1, len(blob) - 20, 3 + 2 + 5):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptionError):
            ring.decrypt(bytes(tampered), REF)


def test_truncated_or_foreign_blobs_fail_cleanly():
    ring = Keyring([K1])
    for blob in (b"", b"v1", b"xx\x02k1" + b"\0" * 40, ring.encrypt("s", REF)[:20]):
        with pytest.raises(DecryptionError):
            ring.decrypt(blob, REF)


def test_rotation_keeps_old_ciphertexts_readable_and_reencrypts_under_the_newest_key():
    old_blob = Keyring([K1]).encrypt("secret", REF)
    ring = Keyring([K2, K1])
    assert ring.decrypt(old_blob, REF) == "secret"
    assert ring.needs_rotation(old_blob)
    new_blob = ring.rotate(old_blob, REF)
    assert ring.key_id_of(new_blob) == "k2" and not ring.needs_rotation(new_blob)
    assert Keyring([K2]).decrypt(new_blob, REF) == "secret"


def test_a_ciphertext_under_a_retired_key_names_the_missing_key():
    blob = Keyring([K1]).encrypt("secret", REF)
    with pytest.raises(DecryptionError, match="k1"):
        Keyring([K2]).decrypt(blob, REF)


@pytest.mark.parametrize("raw,message", [
    ("", "no key"),
    ("k1", "keyid:base64key"),
    ("k1:not-base64!!", "not valid base64"),
    ("k1:" + base64.b64encode(b"short").decode(), "32 bytes"),
    ("k1:" + base64.b64encode(b"a" * 32).decode() + ",k1:" + base64.b64encode(b"b" * 32).decode(), "twice"),
])
def test_malformed_encryption_keys_are_refused_with_the_variable_name(raw, message):
    with pytest.raises(ConfigError, match="ENCRYPTION_KEYS") as info:
        parse_encryption_keys(raw)
    assert message in str(info.value)
