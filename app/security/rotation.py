"""Key rotation: re-encrypt every encrypted column under the newest key, in batches.

Each model declares its ciphertext columns itself (``mapped_column(..., info=encrypted("field"))``); rotation
collects them from the mapped models, so a new secret column is rotated without being listed here.

Resumable by construction: a row already under the newest key is skipped, and each batch commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase, Session

from app.db import ENCRYPTED, Base
from app.security.crypto import FieldRef, Keyring

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncryptedColumn:
    """A model attribute that holds a ciphertext, and the field name bound into its associated data."""

    model: Any
    attribute: str
    field: str


def registered_columns(base: type[DeclarativeBase] = Base) -> list[EncryptedColumn]:
    """Every column a mapped model declares encrypted, by table and attribute (the models must be imported)."""
    found = []
    for mapper in base.registry.mappers:
        for attr in mapper.column_attrs:
            for column in attr.columns:
                if ENCRYPTED in column.info:
                    found.append(EncryptedColumn(mapper.class_, attr.key, column.info[ENCRYPTED]))
    return sorted(found, key=lambda c: (c.model.__tablename__, c.attribute))


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


def rotate_all(keyring: Keyring, ids: list[str], session_for: Callable[[str], Any], batch_size: int = 500) -> int:
    """Rotate every encrypted column of every tenant in ``ids``, one tenant session per column and tenant."""
    total = 0
    for tid in ids:
        for column in registered_columns():
            with session_for(tid) as session:
                n = rotate_tenant(session, keyring, tid, column, batch_size)
            total += n
    log.info("key rotation re-encrypted %d values across %d tenants", total, len(ids),
             extra={"event": "keys.rotate", "count": total})
    return total
