"""Snapshots: an open invoice's payloads and document, stored encrypted, rewritten only when their content changed.

The ciphertexts' associated data binds tenant, table, snapshot id and field, so a ciphertext copied to another
row or tenant does not decrypt. The content hash is over the payloads in a canonical form (sorted keys), so the
same ConnectWise data always hashes the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt  # the document's `date` fields would shadow the bare type
import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from app.connectwise.records import InvoiceHeader
from app.invoices.document import InvoiceDocument
from app.invoices.service import InvoicePayloads
from app.review.models import Snapshot
from app.security.crypto import FieldRef, Keyring

TABLE = Snapshot.__tablename__


@dataclass(frozen=True)
class Built:
    """What one invoice's snapshot is made of, before it is stored."""

    payloads: InvoicePayloads
    header: InvoiceHeader
    document: InvoiceDocument
    content_hash: str


def content_hash(payloads: InvoicePayloads) -> str:
    canonical = json.dumps({"invoice_id": payloads.invoice_id, "header": payloads.header_json(),
                            "collections": payloads.collections_json()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def document_json(document: InvoiceDocument) -> str:
    """The document as JSON (money as decimal strings, dates ISO)."""
    return json.dumps(_plain(document), separators=(",", ":"))


def _ref(snapshot: Snapshot, field: str) -> FieldRef:
    return FieldRef(snapshot.tenant_id, TABLE, snapshot.id, field)


def snapshots_by_invoice(session: Session) -> dict[int, Snapshot]:
    return {s.invoice_id: s for s in session.execute(select(Snapshot)).scalars()}


def store(session: Session, keyring: Keyring, tenant_id: uuid.UUID, existing: Snapshot | None, built: Built,
          rules_digest: str) -> Snapshot:
    """Write the snapshot (new, or over ``existing``); the caller has checked that something changed."""
    snap = existing or Snapshot(id=uuid.uuid4(), tenant_id=tenant_id, invoice_id=built.payloads.invoice_id)
    h, doc = built.header, built.document
    snap.invoice_number, snap.company_name, snap.display_type = h.number[:64], h.company_name, doc.display_type
    snap.total, snap.currency = h.total, h.currency.code[:8]
    snap.status_id, snap.status_name = h.status_id, h.status
    snap.invoice_date, snap.due_date, snap.cw_last_updated = h.date, h.due_date, h.last_updated
    snap.content_hash, snap.rules_digest = built.content_hash, rules_digest
    snap.payloads_enc = keyring.encrypt(built.payloads.to_json(), _ref(snap, "payloads"))
    snap.document_enc = keyring.encrypt(document_json(doc), _ref(snap, "document"))
    snap.snapshot_at = dt.datetime.now(dt.UTC)
    if existing is None:
        session.add(snap)
    return snap


def payloads_of(keyring: Keyring, snapshot: Snapshot) -> InvoicePayloads:
    """The stored payloads (decrypted), e.g. to evaluate the rules again without ConnectWise."""
    return InvoicePayloads.from_json(keyring.decrypt(snapshot.payloads_enc, _ref(snapshot, "payloads")))


def document_of(keyring: Keyring, snapshot: Snapshot) -> dict[str, Any]:
    """The stored document as plain JSON values."""
    data = json.loads(keyring.decrypt(snapshot.document_enc, _ref(snapshot, "document")))
    return data if isinstance(data, dict) else {}


def drop(session: Session, invoice_ids: Iterable[int]) -> int:
    """Remove the snapshots of invoices that are no longer open; returns how many went."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return 0
    return cast(CursorResult[Any], session.execute(delete(Snapshot).where(Snapshot.invoice_id.in_(ids)))).rowcount
