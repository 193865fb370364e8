"""Email changes ConnectWise proposes for a user: raised and kept in step by member sync, decided by an owner or admin.

A sign-in email is the key to an account, so ConnectWise data (which whoever controls the ConnectWise site can
write) never changes one by itself. There is at most one proposal per user; a later ConnectWise change updates it
and a revert withdraws it. Every step is audited with before and after.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.security.server_sessions import end_user_sessions
from app.users.models import PRIVILEGED_ROLES, EmailChangeProposal, User
from app.users.service import UserChangeError


class ProposalNotFound(LookupError):
    """No such proposal in this tenant (or it was withdrawn meanwhile)."""


def proposals_by_user(s: Session) -> dict[uuid.UUID, EmailChangeProposal]:
    return {p.user_id: p for p in s.execute(select(EmailChangeProposal)).scalars()}


def open_proposals(s: Session) -> list[tuple[EmailChangeProposal, User]]:
    """Open proposals with their users, for the users page."""
    rows = s.execute(select(EmailChangeProposal, User).join(User, User.id == EmailChangeProposal.user_id)
                     .where(EmailChangeProposal.status == "open")
                     .order_by(User.name, User.email)).all()
    return [(p, u) for p, u in rows]


def reconcile(s: Session, actor: Actor, user: User, member_id: int, cw_email: str,
              proposal: EmailChangeProposal | None) -> str | None:
    """Bring ``user``'s proposal in line with the email ConnectWise reports; returns what changed, if anything."""
    if user.role in PRIVILEGED_ROLES or not cw_email or cw_email == user.email.lower():
        if proposal is not None:
            withdraw(s, actor, user, proposal)
            return "withdrawn"
        return None
    if proposal is None:
        s.add(EmailChangeProposal(id=uuid.uuid4(), tenant_id=user.tenant_id, user_id=user.id, cw_member_id=member_id,
                                  current_email=user.email, proposed_email=cw_email, status="open"))
        _audit(s, actor, user, "connectwise.email_change_proposed", {"email": user.email}, {"email": cw_email})
        return "proposed"
    if proposal.proposed_email == cw_email:
        return None  # still open, or still dismissed: a rejection holds until ConnectWise says something new
    previous = proposal.proposed_email
    proposal.proposed_email, proposal.current_email, proposal.cw_member_id = cw_email, user.email, member_id
    proposal.status, proposal.decided_by, proposal.decided_at = "open", None, None
    _audit(s, actor, user, "connectwise.email_change_updated", {"email": previous}, {"email": cw_email})
    return "updated"


def withdraw(s: Session, actor: Actor, user: User, proposal: EmailChangeProposal) -> None:
    """ConnectWise no longer claims the change (or the user is now an owner or admin): the proposal goes."""
    if proposal.status == "open":
        _audit(s, actor, user, "connectwise.email_change_withdrawn",
               {"proposed_email": proposal.proposed_email, "status": "open"}, {"status": "withdrawn"})
    s.delete(proposal)


def accept(s: Session, actor: Actor, proposal_id: uuid.UUID, redis: Redis, origin: Origin) -> User:
    """Change the user's email to the proposed one and end their sessions; refuse a clash or a stale proposal."""
    proposal, user = _decidable(s, proposal_id)
    if user.email.lower() != proposal.current_email.lower():
        raise UserChangeError("The user's email changed since ConnectWise proposed this. Run the member sync again.")
    new = proposal.proposed_email
    clash = s.execute(select(User.id).where(func.lower(User.email) == new.lower(), User.id != user.id)).first()
    if clash:
        raise UserChangeError(f"Someone else here already uses {new}. Change or remove that user first.")
    old = user.email
    try:
        with s.begin_nested():
            user.email = new
            s.delete(proposal)
            s.flush()
    except IntegrityError:  # another request took the address a moment ago
        raise UserChangeError(f"Someone else here already uses {new}. Change or remove that user first.") from None
    _audit(s, actor, user, "user.email_change_accepted", {"email": old}, {"email": new}, origin)
    # Whoever holds a session was signed in under the old address; they sign in again under the new one.
    end_user_sessions(redis, user.get_id())
    return user


def reject(s: Session, actor: Actor, proposal_id: uuid.UUID, decided_by: uuid.UUID | None,
           origin: Origin) -> EmailChangeProposal:
    """Dismiss the proposal; the user keeps their email until ConnectWise reports yet another one."""
    proposal, user = _decidable(s, proposal_id, allow_privileged=True)
    proposal.status, proposal.decided_by, proposal.decided_at = "rejected", decided_by, datetime.now(UTC)
    s.flush()
    _audit(s, actor, user, "user.email_change_rejected", {"proposed_email": proposal.proposed_email,
                                                          "status": "open"}, {"status": "rejected"}, origin)
    return proposal


def _decidable(s: Session, proposal_id: uuid.UUID,
               allow_privileged: bool = False) -> tuple[EmailChangeProposal, User]:
    proposal = s.get(EmailChangeProposal, proposal_id, with_for_update=True)
    if proposal is None:
        raise ProposalNotFound(str(proposal_id))
    if proposal.status != "open":
        raise UserChangeError("This change was already dismissed.")
    user = s.get(User, proposal.user_id, with_for_update=True)
    if user is None:
        raise ProposalNotFound(str(proposal_id))
    if user.role in PRIVILEGED_ROLES and not allow_privileged:
        # An admin accepting a ConnectWise email for an owner or another admin would be a way to take their account.
        raise UserChangeError(f"{user.email} is an owner or admin; ConnectWise never changes their sign-in email.")
    return proposal, user


def _audit(s: Session, actor: Actor, user: User, action: str, before: dict, after: dict,
           origin: Origin | None = None) -> None:
    record(s, user.tenant_id, actor, action, target_type="user", target_id=user.id, before=before, after=after,
           origin=origin)
