"""Saving the tenant's rule settings: validated, audited with what changed, and the stored snapshots evaluated again
under them (decrypted from the database, never read from ConnectWise) in the same transaction."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.invoices.service import InvoicePayloads
from app.review import flags as flag_store
from app.review import summary
from app.review.models import Snapshot
from app.review.rules import build_history, validate_settings
from app.review.rules.history import History, accepts_history
from app.review.settings import locked_row, settings_of
from app.review.snapshots import payloads_of
from app.review.sweep import Evaluate, default_evaluate, rules_digest
from app.security.crypto import DecryptionError, Keyring

log = logging.getLogger(__name__)


@dataclass
class Saved:
    """What a save did: the fields that changed (``rule.setting`` -> (before, after)) and the flags it moved."""

    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    raised: int = 0
    cleared: int = 0
    invoices: int = 0  # snapshots evaluated again


def current(session: Session, tenant_id: uuid.UUID | str) -> dict[str, dict]:
    """The tenant's complete rule settings (defaults where none are saved)."""
    return validate_settings(settings_of(session, tenant_id).rules or None)


def save(session: Session, keyring: Keyring, tenant_id: uuid.UUID | str, raw: Mapping[str, Any], actor: Actor,
         origin: Origin | None = None, evaluate: Evaluate | None = None) -> Saved:
    """Validate and store ``raw``; raises ``SettingsError`` (naming the field) and then changes nothing."""
    tid = uuid.UUID(str(tenant_id))
    new = validate_settings(raw)
    row = locked_row(session, tid)  # the sweep's write takes this lock too: no interleaving with it
    old = validate_settings(row.rule_settings or None)
    saved = Saved(changed={f"{rule}.{key}": (old[rule].get(key), value)
                           for rule, values in new.items() for key, value in values.items()
                           if old[rule].get(key) != value})
    if not saved.changed:
        return saved
    row.rule_settings = new
    record(session, tid, actor, "review.rules_changed", target_type="review_settings", target_id=tid,
           before={k: v[0] for k, v in saved.changed.items()}, after={k: v[1] for k, v in saved.changed.items()},
           origin=origin)
    reevaluate(session, keyring, tid, new, evaluate or default_evaluate(), saved)
    return saved


def reevaluate(session: Session, keyring: Keyring, tenant_id: uuid.UUID, rule_settings: Mapping[str, Any],
               evaluate: Evaluate, into: Saved) -> None:
    """Run the rules again over every stored snapshot not yet evaluated under these settings (and, for rules that
    take it, the history built from the stored snapshots themselves: ConnectWise is not asked)."""
    digest, now = rules_digest(evaluate, rule_settings), dt.datetime.now(dt.UTC)
    rechecked: list[int] = []
    snaps = list(session.execute(select(Snapshot).order_by(Snapshot.invoice_id)).scalars())
    stored: dict[int, InvoicePayloads] = {}
    history: History | None = None
    if accepts_history(evaluate):
        for snap in snaps:
            try:
                stored[snap.invoice_id] = payloads_of(keyring, snap)
            except (DecryptionError, ValueError):  # checked below on its own, and fails there as before
                continue
        history = build_history(payloads=stored.values())
    for snap in snaps:
        invoice_digest = history.fold(digest, snap.invoice_id) if history is not None else digest
        if snap.rules_digest == invoice_digest:
            continue
        try:
            payloads = stored.get(snap.invoice_id) or payloads_of(keyring, snap)
            findings = list(evaluate(payloads, dict(rule_settings) or None,
                                     **({"history": history} if history is not None else {})))
        except Exception as exc:  # as in the sweep: one invoice's failure costs only its re-check
            log.warning("review rules failed on a stored invoice: %s", type(exc).__name__,
                        extra={"event": "review.rules_failed"})
            continue
        counts = flag_store.apply_findings(session, keyring, tenant_id, snap.invoice_id, snap.invoice_number,
                                           findings, now)
        snap.rules_digest = invoice_digest
        rechecked.append(snap.invoice_id)
        into.raised += counts.raised
        into.cleared += counts.cleared
        into.invoices += 1
    summary.refresh_flags(session, rechecked)
