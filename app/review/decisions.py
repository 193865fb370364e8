"""Decisions on an invoice's review: approve, undo approval, reject (with a reason), close, change status; the
outcome of the reviewers' decisions; the soft gate on open error and warning flags.

Outcome: any current reviewer rejected -> rejected; every current reviewer approved -> approved; else needs review.
Close ends the review whatever the reviewers said (an invoice handled outside the chain); nothing but a status change
is taken on a closed review, nor on an invoice no longer open in ConnectWise (sent or closed there). A decider who
is not yet a reviewer joins as one (source "manual") with their decision.

ConnectWise follows the outcome (``app.review.writeback``): becoming approved or rejected writes the mapped status,
close writes the closed status, a manual change writes the status picked. Leaving approved or rejected for "needs
review" (an undo, a rejecter now approving while others wait) puts back the status the invoice had before that
outcome was written, because a status like "Ready to Send" tells people and ConnectWise's batch e-mail that the
invoice may go out, which is no longer true; if that write had not started yet it is simply dropped.

Each decision locks the invoice's review row first, so two reviewers deciding at once both count. Each is an audit
row (who, what, source IP) and a timeline event (details: ``reason`` for a rejection or close, ``status`` for a
change, ``joined`` when the decider became a reviewer, ``confirmed_flags`` when approved past the soft gate,
``outcome`` when the invoice's review state changed with it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.review import events, status_map, writeback
from app.review.events import EventActor
from app.review.flags import SEVERITIES
from app.review.models import Flag, ReadMark, Reviewer, ReviewInvoice, WriteBack
from app.review.times import when, zone
from app.security.crypto import FieldRef
from app.services import Services
from app.tenants.models import TenantSettings
from app.users.models import User

REASON_MAX = 2000
STATE_LABELS = {"needs_review": "Needs review", "approved": "Approved", "rejected": "Rejected", "closed": "Closed"}
WRITEBACK_LABELS = {"pending": "Waiting to be written to ConnectWise", "running": "Writing to ConnectWise",
                    "done": "Written to ConnectWise", "failed": "Not written to ConnectWise",
                    "conflict": "Changed in ConnectWise meanwhile", "superseded": "Not written"}


class DecisionError(ValueError):
    """A decision refused: ``status`` is the HTTP answer (404 no such review, 409 not now, 422 bad input) and
    ``field`` the form field it concerns, if any."""

    def __init__(self, message: str, status: int = 409, field: str | None = None):
        super().__init__(message)
        self.message, self.status, self.field = message, status, field


@dataclass(frozen=True)
class GateFlag:
    id: uuid.UUID
    severity: str
    message: str


@dataclass
class Done:
    """What a decision did, for the panel's message."""

    message: str
    outcome: str
    writeback: WriteBack | None = None
    gate: list[GateFlag] = field(default_factory=list)

    @property
    def gated(self) -> bool:
        return bool(self.gate)


# --- reading ----------------------------------------------------------------------------------------------------

def review_of(session: Session, invoice_id: int, *, lock: bool = False) -> ReviewInvoice:
    query = select(ReviewInvoice).where(ReviewInvoice.invoice_id == invoice_id)
    row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None:
        raise DecisionError("This invoice is not in review (it may not have been swept yet).", 404)
    return row


def blocking_flags(session: Session, services: Services, invoice_id: int) -> list[GateFlag]:
    """The invoice's open error and warning flags (neither cleared nor marked OK), errors first."""
    rows = session.execute(select(Flag).where(Flag.invoice_id == invoice_id, Flag.cleared_at.is_(None),
                                              Flag.marked_ok_at.is_(None),
                                              Flag.severity.in_(("error", "warning"))).order_by(Flag.rule)).scalars()
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    flags = [GateFlag(f.id, f.severity, services.keyring.decrypt(f.message_enc,
                                                                 FieldRef(f.tenant_id, Flag.__tablename__, f.id,
                                                                          "message")))
             for f in rows]
    return sorted(flags, key=lambda f: rank.get(f.severity, 9))


def reviewers_of(session: Session, invoice_id: int) -> list[Reviewer]:
    return list(session.execute(select(Reviewer).where(Reviewer.invoice_id == invoice_id)
                                .order_by(Reviewer.added_at, Reviewer.id)).scalars())


def reviewer_for(session: Session, invoice_id: int, user: Any) -> Reviewer | None:
    """The user's reviewer row on the invoice: by user, or by their ConnectWise member (seeded from routing); a
    guest's by their link."""
    guest_id = getattr(user, "guest_id", None)  # part 3: a guest (app.review.guests) is a reviewer by link only
    if guest_id is not None:
        return session.execute(select(Reviewer).where(Reviewer.invoice_id == invoice_id,
                                                      Reviewer.guest_id == guest_id).with_for_update()).scalar_one_or_none()
    member_id = getattr(user, "cw_member_id", None)
    match = Reviewer.user_id == user.id
    if member_id is not None:
        match = or_(match, and_(Reviewer.user_id.is_(None), Reviewer.member_id == member_id))
    rows = session.execute(select(Reviewer).where(Reviewer.invoice_id == invoice_id, match)
                           .with_for_update()).scalars().all()
    return next((r for r in rows if r.user_id == user.id), rows[0] if rows else None)


def outcome_of(reviewers: list[Reviewer]) -> str:
    """The review state the reviewers' states make (closed is never an outcome: only Close closes)."""
    states = [r.state for r in reviewers]
    if "rejected" in states:
        return "rejected"
    if states and all(s == "approved" for s in states):
        return "approved"
    return "needs_review"


# --- deciding ---------------------------------------------------------------------------------------------------

def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(user: Any) -> str:
    return (getattr(user, "name", "") or "").strip() or getattr(user, "email", "") or "Someone"


def _join(session: Session, tenant_id: uuid.UUID | str, invoice_id: int, user: Any) -> tuple[Reviewer, bool]:
    """The decider's reviewer row, made (source "manual") when they were not one; True when made now."""
    reviewer = reviewer_for(session, invoice_id, user)
    if reviewer is None and getattr(user, "guest_id", None) is not None:
        raise DecisionError("Only a guest assigned as a reviewer may approve or reject.", 403)
    if reviewer is not None and reviewer.guest_id is not None:
        return reviewer, False
    if reviewer is not None:
        if reviewer.user_id is None:
            reviewer.user_id = user.id  # a routing member who has signed in since
        return reviewer, False
    reviewer = Reviewer(id=uuid.uuid4(), tenant_id=uuid.UUID(str(tenant_id)), invoice_id=invoice_id,
                        user_id=user.id, member_id=getattr(user, "cw_member_id", None), name=_name(user)[:200],
                        state="waiting", source="manual", added_by=user.id, added_at=_now())
    session.add(reviewer)
    session.flush()
    return reviewer, True


def _open_review(session: Session, invoice_id: int) -> ReviewInvoice:
    invoice = review_of(session, invoice_id, lock=True)
    if invoice.state == "closed":
        raise DecisionError("This review is closed; only the billing status can still be changed.")
    if not invoice.is_open:
        raise DecisionError("This invoice is no longer open in ConnectWise (sent or closed there), so its review is "
                            "over; only the billing status can still be changed.")
    return invoice


def _target(session: Session, services: Services, tenant_id: uuid.UUID | str,
            decision: str) -> tuple[int | None, str]:
    """The mapped status for a decision from the kept catalogue, or (None, "") for the job to pick (no
    ConnectWise call in a request)."""
    catalog = status_map.cached_catalog(session, services.redis, tenant_id)
    if catalog is None:
        return None, ""
    chosen = status_map.effective_map(status_map.stored_map(session, tenant_id), catalog).get(decision)
    return (chosen.id, chosen.name) if chosen is not None else (None, "")


def _settle(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice: ReviewInvoice,
            new_state: str, user: Any) -> WriteBack | None:
    """Move the invoice's review state and make ConnectWise follow (see the module docstring)."""
    old = invoice.state
    if new_state == old:
        return None
    invoice.state, invoice.state_at, invoice.state_by = new_state, _now(), getattr(user, "id", None)
    created_by = getattr(user, "id", None)
    if new_state in ("approved", "rejected", "closed"):
        target_id, target_name = _target(session, services, tenant_id, new_state)
        return writeback.create(session, services.redis, tenant_id, invoice.invoice_id, new_state, target_id,
                                target_name, invoice.status_id, created_by)
    # Back to needs review: undo what the outcome wrote, or drop it if it never started.
    written = session.execute(select(WriteBack).where(WriteBack.invoice_id == invoice.invoice_id,
                                                      WriteBack.decision == old)
                              .order_by(WriteBack.created_at.desc()).limit(1)).scalar_one_or_none()
    if written is None or written.state in ("pending", "failed", "conflict", "superseded"):
        writeback.supersede(session, invoice.invoice_id, "The decision was undone before it was written.")
        return None
    if written.expected_status_id is None:
        return None
    expected = written.target_status_id if written.state == "running" else invoice.status_id
    return writeback.create(session, services.redis, tenant_id, invoice.invoice_id, "manual",
                            written.expected_status_id, "", expected, created_by)


def _audit_and_event(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice: ReviewInvoice,
                     user: Any, actor: Actor, origin: Origin | None, kind: str, action: str, before: dict,
                     after: dict, detail: dict) -> None:
    record(session, tenant_id, actor, action, target_type="invoice", target_id=invoice.invoice_id,
           before=before, after={"invoice_number": invoice.invoice_number, **after}, origin=origin)
    events.add(session, services.keyring, tenant_id, invoice.invoice_id, kind, EventActor.for_user(user), detail)


def _writing(wb: WriteBack | None) -> str:
    if wb is None:
        return ""
    name = f"“{wb.target_status_name}”" if wb.target_status_name else "its status"
    return f" Writing {name} to ConnectWise."


def approve(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice_id: int, user: Any,
            actor: Actor, origin: Origin | None = None, *, confirmed: bool = False) -> Done:
    """The user approves. Open error or warning flags and no ``confirmed``: nothing changes, and the gate's
    flags come back for the confirmation panel."""
    invoice = _open_review(session, invoice_id)
    gate = blocking_flags(session, services, invoice_id)
    if gate and not confirmed:
        return Done("", invoice.state, gate=gate)
    reviewer, joined = _join(session, tenant_id, invoice_id, user)
    if reviewer.state == "approved":
        raise DecisionError("You have already approved this invoice.")
    before = {"state": invoice.state, "reviewer_state": None if joined else reviewer.state}
    reviewer.state, reviewer.state_at = "approved", _now()
    old = invoice.state
    wb = _settle(session, services, tenant_id, invoice, outcome_of(reviewers_of(session, invoice_id)), user)
    detail: dict[str, Any] = {"joined": True} if joined else {}
    if gate:
        detail["confirmed_flags"] = len(gate)
    if invoice.state != old:
        detail["outcome"] = invoice.state
    _audit_and_event(session, services, tenant_id, invoice, user, actor, origin, "approved", "review.approved",
                     before, {"state": invoice.state, "reviewer_state": "approved", **detail}, detail)
    if invoice.state == "approved":
        message = "Approved by every reviewer: the invoice is approved." + _writing(wb)
    else:
        waiting = sum(1 for r in reviewers_of(session, invoice_id) if r.state != "approved")
        message = f"Your approval is recorded; waiting for {waiting} more reviewer{'s' if waiting != 1 else ''}."
        message += _writing(wb)
    return Done(message, invoice.state, wb)


def undo(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice_id: int, user: Any,
         actor: Actor, origin: Origin | None = None) -> Done:
    """The user takes back their approval: they are pending again (viewed if they have opened the page)."""
    invoice = _open_review(session, invoice_id)
    reviewer = reviewer_for(session, invoice_id, user)
    if reviewer is None or reviewer.state != "approved":
        raise DecisionError("There is no approval of yours to undo.")
    read = session.execute(select(ReadMark.id).where(ReadMark.invoice_id == invoice_id,
                                                     ReadMark.user_id == user.id)).first()
    before = {"state": invoice.state, "reviewer_state": "approved"}
    reviewer.state, reviewer.state_at = ("viewed" if read else "waiting"), _now()
    old = invoice.state
    wb = _settle(session, services, tenant_id, invoice, outcome_of(reviewers_of(session, invoice_id)), user)
    detail = {"outcome": invoice.state} if invoice.state != old else {}
    _audit_and_event(session, services, tenant_id, invoice, user, actor, origin, "unapproved",
                     "review.approval_undone", before, {"state": invoice.state, "reviewer_state": reviewer.state},
                     detail)
    message = "Your approval is undone."
    if old == "approved" and wb is not None:
        message += " Putting back the status it had before in ConnectWise."
    return Done(message, invoice.state, wb)


def _reason(text: str | None, required: bool) -> str:
    reason = (text or "").strip()
    if required and not reason:
        raise DecisionError("Say why, so whoever fixes the invoice knows what to change.", 422, "reason")
    if len(reason) > REASON_MAX:
        raise DecisionError(f"Keep the reason under {REASON_MAX} characters.", 422, "reason")
    return reason


def reject(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice_id: int, user: Any,
           actor: Actor, origin: Origin | None = None, *, reason: str | None = None) -> Done:
    """The user rejects, saying why (required): the invoice is rejected."""
    text = _reason(reason, required=True)
    invoice = _open_review(session, invoice_id)
    reviewer, joined = _join(session, tenant_id, invoice_id, user)
    if reviewer.state == "rejected":
        raise DecisionError("You have already rejected this invoice.")
    before = {"state": invoice.state, "reviewer_state": None if joined else reviewer.state}
    reviewer.state, reviewer.state_at = "rejected", _now()
    old = invoice.state
    wb = _settle(session, services, tenant_id, invoice, outcome_of(reviewers_of(session, invoice_id)), user)
    detail: dict[str, Any] = {"reason": text, **({"joined": True} if joined else {})}
    if invoice.state != old:
        detail["outcome"] = invoice.state
    # The reason quotes the invoice: it goes in the (encrypted) event, the audit row only says there was one.
    _audit_and_event(session, services, tenant_id, invoice, user, actor, origin, "rejected", "review.rejected",
                     before, {"state": invoice.state, "reviewer_state": "rejected", "joined": joined,
                              "reason_given": True}, detail)
    return Done("Rejected: the invoice goes back for correction." + _writing(wb), invoice.state, wb)


def close(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice_id: int, user: Any,
          actor: Actor, origin: Origin | None = None, *, reason: str | None = None) -> Done:
    """The user ends the review without the approval chain (e.g. an invoice handled outside)."""
    text = _reason(reason, required=False)
    invoice = _open_review(session, invoice_id)
    before = {"state": invoice.state}
    wb = _settle(session, services, tenant_id, invoice, "closed", user)
    detail = {"reason": text} if text else {}
    _audit_and_event(session, services, tenant_id, invoice, user, actor, origin, "closed", "review.closed", before,
                     {"state": "closed", "reason_given": bool(text)}, detail)
    return Done("The review is closed." + _writing(wb), invoice.state, wb)


def change_status(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice_id: int, user: Any,
                  actor: Actor, origin: Origin | None, status: status_map.Status) -> Done:
    """A manual status change in ConnectWise (the review's state stays as it is)."""
    if status.inactive:
        raise DecisionError(f"“{status.name}” is inactive in ConnectWise: pick an active status.", 422, "status_id")
    invoice = review_of(session, invoice_id, lock=True)
    wb = writeback.create(session, services.redis, tenant_id, invoice_id, "manual", status.id, status.name,
                          invoice.status_id, getattr(user, "id", None))
    _audit_and_event(session, services, tenant_id, invoice, user, actor, origin, "status_changed",
                     "review.status_changed", {"status_id": invoice.status_id, "status": invoice.status_name},
                     {"status_id": status.id, "status": status.name}, {"status": status.name})
    return Done(f"Changing the status to “{status.name}” in ConnectWise.", invoice.state, wb)


def recompute(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice_id: int,
              user: Any) -> WriteBack | None:
    """After reviewers were added or removed: the review state the remaining reviewers make (ConnectWise follows).
    A closed review stays closed."""
    invoice = review_of(session, invoice_id, lock=True)
    if invoice.state == "closed":
        return None
    return _settle(session, services, tenant_id, invoice, outcome_of(reviewers_of(session, invoice_id)), user)


# --- the panel --------------------------------------------------------------------------------------------------

def _tz(session: Session, tenant_id: uuid.UUID | str) -> dt.tzinfo:
    row = session.get(TenantSettings, uuid.UUID(str(tenant_id)))
    return zone(row.timezone if row is not None else None)


def _user_names(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids))).all()
    return {r.id: (r.name or "").strip() or r.email for r in rows}


def writeback_view(wb: WriteBack | None, tz: dt.tzinfo) -> dict[str, Any] | None:
    if wb is None:
        return None
    target = wb.target_status_name or "the mapped status"
    return {"id": str(wb.id), "state": wb.state, "label": WRITEBACK_LABELS.get(wb.state, wb.state), "target": target,
            "decision": wb.decision, "reason": wb.reason, "attempts": wb.attempts,
            "when": when(wb.finished_at or wb.created_at, tz), "polling": wb.state in ("pending", "running"),
            "can_retry": wb.state == "failed", "can_resolve": wb.state == "conflict"}


def panel(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any, *,
          gate: list[GateFlag] | None = None, error: DecisionError | None = None, message: str | None = None,
          reason: str = "") -> dict[str, Any]:
    """What ``review/_decision.html`` shows: the state, the actions this user may take, write-back status."""
    invoice = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == invoice_id)
                              ).scalar_one_or_none()
    if invoice is None:
        return {"invoice_id": invoice_id, "exists": False, "actions": []}
    tz = _tz(session, tenant_id)
    reviewers = reviewers_of(session, invoice_id)
    mine = next((r for r in reviewers if r.user_id == getattr(user, "id", None)), None)
    if mine is None and getattr(user, "cw_member_id", None) is not None:
        mine = next((r for r in reviewers if r.user_id is None and r.member_id == user.cw_member_id), None)
    my_state = mine.state if mine is not None else None
    closed = invoice.state == "closed" or not invoice.is_open
    actions = ["change_status"]
    if not closed:
        actions = [a for a, ok in (("approve", my_state != "approved"), ("undo", my_state == "approved"),
                                   ("reject", my_state != "rejected"), ("close", True)) if ok] + actions
    names = _user_names(session, {invoice.state_by} if invoice.state_by else set())
    rejection = None
    if invoice.state == "rejected":
        latest = next((e for e in reversed(events.of_invoice(session, services.keyring, invoice_id))
                       if e.kind == "rejected"), None)
        if latest is not None:
            rejection = {"by": latest.actor.name, "when": when(latest.at, tz), "reason": latest.detail.get("reason")}
    return {
        "invoice_id": invoice_id, "exists": True, "invoice_number": invoice.invoice_number,
        "state": invoice.state, "state_label": STATE_LABELS.get(invoice.state, invoice.state),
        "state_when": when(invoice.state_at, tz) if invoice.state != "needs_review" else "",
        "state_by": names.get(invoice.state_by, "") if invoice.state_by else "",
        "status_name": invoice.status_name, "is_open": invoice.is_open,
        "approved": sum(1 for r in reviewers if r.state == "approved"), "reviewers": len(reviewers),
        "my_state": my_state, "actions": actions, "blocking_flags": invoice.blocking_flags,
        "gate": gate, "error": error, "message": message, "reason": reason, "rejection": rejection,
        "writeback": writeback_view(writeback.latest(session, invoice_id), tz),
    }
