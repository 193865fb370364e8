"""Key rotation: re-encrypt every registered encrypted column under the newest key, in batches.

Resumable by construction: a row already under the newest key is skipped, and each batch commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.security.crypto import FieldRef, Keyring

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncryptedColumn:
    """A model attribute that holds a ciphertext, and the field name bound into its associated data."""

    model: Any
    attribute: str
    field: str


def registered_columns() -> list[EncryptedColumn]:
    """Every encrypted column in the schema; a feature that stores a secret adds itself here."""
    from app.connectwise.models import Connection

    return [EncryptedColumn(Connection, "public_key_enc", "public_key"),
            EncryptedColumn(Connection, "private_key_enc", "private_key")]


def tenant_ids(session: Session) -> list[str]:
    return [str(t) for t in session.execute(text("select * from bi_tenant_ids()")).scalars()]


def rotate_tenant(session: Session, keyring: Keyring, tenant_id: str, column: EncryptedColumn,
                  batch_size: int = 500) -> int:
    """Re-encrypt one tenant's rows of ``column``; commits per batch; returns rows changed."""
    model, changed, last_pk = column.model, 0, None
    pk = model.__mapper__.primary_key[0]
    while True:
        query = select(model).where(getattr(model, column.attribute).is_not(None)).order_by(pk).limit(batch_size)
        if last_pk is not None:
            query = query.where(pk > last_pk)
        rows = session.execute(query).scalars().all()
        if not rows:
            return changed
        for row in rows:
            blob = getattr(row, column.attribute)
            if keyring.needs_rotation(blob):
                ref = FieldRef(tenant_id, model.__tablename__, getattr(row, pk.key), column.field)
                setattr(row, column.attribute, keyring.rotate(blob, ref))
                changed += 1
            last_pk = getattr(row, pk.key)
        session.commit()


def rotate_all(unbound_session: Session, keyring: Keyring, session_for: Callable[[str], Any],
               batch_size: int = 500) -> int:
    total = 0
    ids = tenant_ids(unbound_session)
    for tid in ids:
        for column in registered_columns():
            with session_for(tid) as session:
                n = rotate_tenant(session, keyring, tid, column, batch_size)
            total += n
    log.info("key rotation re-encrypted %d values across %d tenants", total, len(ids),
             extra={"event": "keys.rotate", "count": total})
    return total
