"""AES-256-GCM keyring: random 96-bit nonces, key id in the ciphertext, associated data per field.

Ciphertext layout (bytes): b"v1" | len(key id) (1 byte) | key id | nonce (12) | ciphertext+tag.
The associated data binds a ciphertext to (tenant, table, record, field): moved anywhere else, it fails.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.config import parse_encryption_keys

VERSION = b"v1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """The ciphertext was tampered with, moved, or sealed under a key we no longer hold."""


@dataclass(frozen=True)
class FieldRef:
    """Where a ciphertext lives; becomes the associated data."""

    tenant_id: uuid.UUID | str
    table: str
    record_id: uuid.UUID | str | int
    field: str

    def associated_data(self) -> bytes:
        return f"{self.tenant_id}|{self.table}|{self.record_id}|{self.field}".encode()


class Keyring:
    """Keys by id; the first one encrypts, all of them decrypt."""

    def __init__(self, keys: list[tuple[str, bytes]]):
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._keys = {kid: AESGCM(key) for kid, key in keys}
        self.current_id = keys[0][0]

    @classmethod
    def from_config(cls, raw: str) -> Keyring:
        return cls(parse_encryption_keys(raw))

    def encrypt(self, plaintext: str, ref: FieldRef) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        kid = self.current_id.encode()
        sealed = self._keys[self.current_id].encrypt(nonce, plaintext.encode(), ref.associated_data())
        return VERSION + bytes([len(kid)]) + kid + nonce + sealed

    def decrypt(self, blob: bytes, ref: FieldRef) -> str:
        kid, nonce, sealed = self._split(blob)
        aead = self._keys.get(kid)
        if aead is None:
            raise DecryptionError(f"no key with id {kid!r} in ENCRYPTION_KEYS")
        try:
            return aead.decrypt(nonce, sealed, ref.associated_data()).decode()
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not authenticate for this record") from exc

    def key_id_of(self, blob: bytes) -> str:
        return self._split(blob)[0]

    def needs_rotation(self, blob: bytes) -> bool:
        return self.key_id_of(blob) != self.current_id

    def rotate(self, blob: bytes, ref: FieldRef) -> bytes:
        """Re-encrypt under the current key (a fresh nonce too)."""
        return self.encrypt(self.decrypt(blob, ref), ref)

    @staticmethod
    def _split(blob: bytes) -> tuple[str, bytes, bytes]:
        blob = bytes(blob)
        if len(blob) < 3 or blob[:2] != VERSION:
            raise DecryptionError("not a Better Invoice ciphertext")
        n = blob[2]
        kid = blob[3:3 + n]
        nonce = blob[3 + n:3 + n + NONCE_BYTES]
        sealed = blob[3 + n + NONCE_BYTES:]
        if len(kid) != n or len(nonce) != NONCE_BYTES or len(sealed) < 16:
            raise DecryptionError("truncated ciphertext")
        return kid.decode(errors="replace"), nonce, sealed
