"""Guest reviewer links: a per-recipient link to one invoice's review, no sign-in, its token stored only as a hash,
expiring and revocable; the guest as a principal of the guest pages and as a reviewer.

Design (the pages are ``app.review.guest_views``, the session ``app.security.guest_sessions``):

- A link is ``/g/<token>``: 32 random bytes from ``secrets`` (256 bits), URL-safe; only its SHA-256 is stored, the
  recipient's email and name encrypted. It expires after the workspace's ``review_settings.guest_link_days`` (14 by
  default; 1 to 90) and can be revoked one by one. The URL is known once, when the link is made: afterwards the
  invoice lists the link (recipient, created, expires, last used) and a new one can be issued.
- Opening the link is a pre-tenant step: ``bi_review_guest_link`` (SECURITY DEFINER, owned by a NOLOGIN role) turns
  the token's hash into the tenant id and link id and nothing else. The request's tenant becomes the link's, and
  whether the link still works (revoked, expired, gone) is read under RLS. Unknown, revoked and expired tokens get
  one page ("link not valid", 404) so a stranger learns nothing. Then the guest gets a fresh guest session (its own
  cookie, scoped to /g/, 30 minutes idle) that holds the tenant and link ids, and is sent on to /g/review: the token
  leaves the address bar and never reaches logs beyond the route pattern.
- Every guest request reads the link again (``active``), so a revocation or the expiry ends the guest's access at
  the next click, not at the session's end. Flask-Login never sees a guest (no ``_user_id`` in a guest session),
  so no staff page opens for one; CSRF applies to the guest's forms through the guest session's own token.
- A guest may view the review (the branded invoice from the snapshot, the flags without the gear, Mark as OK or
  ConnectWise links, the reviewers, the timeline), download the PDF, comment, and approve or reject only while
  assigned as a reviewer. Their actions are timeline events by ``EventActor("guest", link id, "<name> (guest,
  <email>)")`` and audit rows by an ``Actor("guest", ...)`` of the same label.
- A guest reviewer is a ``review_reviewers`` row with ``guest_id`` (the link); a new link for the same email on the
  same invoice moves the reviewer to it, so a re-issued link keeps the assignment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.review import events
from app.review.events import EventActor
from app.review.guest_models import GuestLink
from app.review.models import Reviewer, ReviewInvoice, ReviewSettings
from app.review.reviewers import tenant_zone
from app.review.settings import locked_row
from app.review.times import when
from app.security.crypto import FieldRef, Keyring
from app.services import Services

TOKEN_BYTES = 32
DEFAULT_DAYS = 14
MAX_DAYS = 90
PATH = "/g/"
EMAIL_MAX = 254
NAME_MAX = 200
TOUCH_EVERY = dt.timedelta(minutes=1)  # "last used" is written at most this often per link
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{40,64}$")
_EMAIL_SHAPE = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
_LOOKUP = text("select tenant_id, link_id from bi_review_guest_link(:h)")
TABLE = GuestLink.__tablename__


class GuestError(ValueError):
    """A guest link that cannot be made, with the sentence to show beside the form (``field``: which input)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass(frozen=True)
class Guest:
    """The principal of the guest pages: one link's recipient, acting on one invoice. Never a user: ``id`` is None
    (nothing records a guest as a user), ``guest_id`` names the link."""

    link_id: uuid.UUID
    tenant_id: uuid.UUID
    invoice_id: int
    name: str
    email: str
    id: None = None
    cw_member_id: None = None
    role: str = "guest"
    is_authenticated: bool = False

    @property
    def guest_id(self) -> uuid.UUID:
        return self.link_id

    @property
    def guest_label(self) -> str:
        """How the timeline and the audit log name the guest: "Ana Ruiz (guest, ap@client.example)"."""
        return f"{self.name} (guest, {self.email})" if self.name else f"{self.email} (guest)"

    @property
    def audit_actor(self) -> Actor:
        return Actor("guest", str(self.link_id), self.guest_label)

    @property
    def event_actor(self) -> EventActor:
        return EventActor("guest", str(self.link_id), self.guest_label)


@dataclass(frozen=True)
class LinkEntry:
    """One link as the invoice's panel lists it."""

    id: uuid.UUID
    name: str
    email: str
    state: str  # active | expired | revoked
    created: str
    expires: str
    last_used: str
    reviewer: bool


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ref(link: GuestLink, field: str) -> FieldRef:
    return FieldRef(link.tenant_id, TABLE, link.id, field)


def email_of(keyring: Keyring, link: GuestLink) -> str:
    return keyring.decrypt(link.email_enc, _ref(link, "email"))


def name_of(keyring: Keyring, link: GuestLink) -> str:
    return keyring.decrypt(link.name_enc, _ref(link, "name"))


def state_of(link: GuestLink, now: dt.datetime | None = None) -> str:
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at <= (now or _now()):
        return "expired"
    return "active"


def link_days(session: Session, tenant_id: uuid.UUID | str) -> int:
    """The workspace's guest link lifetime in days (``review_settings.guest_link_days``; 14 without a row)."""
    row = session.get(ReviewSettings, uuid.UUID(str(tenant_id)))
    days = row.guest_link_days if row is not None and row.guest_link_days else DEFAULT_DAYS
    return max(1, min(MAX_DAYS, int(days)))


def parse_days(value: str | None) -> int:
    """The typed link lifetime as whole days; GuestError (field ``days``) unless it is 1 to 90."""
    raw = (value or "").strip()
    if not raw.isdigit() or len(raw) > 3 or not 1 <= int(raw) <= MAX_DAYS:
        raise GuestError(f"Enter a whole number of days from 1 to {MAX_DAYS}.", "days")
    return int(raw)


def set_link_days(session: Session, tenant_id: uuid.UUID | str, days: int, actor: Actor,
                  origin: Origin | None = None) -> bool:
    """Set the workspace's guest link lifetime (for links made from now on), audited with before and after;
    False when it was already that."""
    tid = uuid.UUID(str(tenant_id))
    before = link_days(session, tid)
    if days == before:
        return False
    row = locked_row(session, tid)
    row.guest_link_days = days
    record(session, tid, actor, "review.guest_link_days_changed", target_type="review_settings", target_id=tid,
           before={"guest_link_days": before}, after={"guest_link_days": days}, origin=origin)
    session.flush()
    return True


def url_of(services: Services, token: str) -> str:
    return services.config.BASE_URL.rstrip("/") + PATH + token


def clean_email(value: str | None) -> str:
    email = (value or "").strip()
    if not email:
        raise GuestError("Enter the guest's email address.", "email")
    if len(email) > EMAIL_MAX or not _EMAIL_SHAPE.match(email):
        raise GuestError("That does not look like an email address.", "email")
    return email


def clean_name(value: str | None, email: str) -> str:
    name = " ".join((value or "").split())
    if len(name) > NAME_MAX:
        raise GuestError(f"Keep the name under {NAME_MAX} characters.", "name")
    return name or email.split("@", 1)[0]


# --- issuing and revoking ----------------------------------------------------------------------------------------

def links_of(session: Session, invoice_id: int) -> list[GuestLink]:
    return list(session.execute(select(GuestLink).where(GuestLink.invoice_id == int(invoice_id))
                                .order_by(GuestLink.created_at.desc(), GuestLink.id)).scalars())


def issue_link(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice_id: int, *, email: str,
               name: str, member_id: int | None, created_by: uuid.UUID | None,
               actor: Actor | None = None, origin: Origin | None = None) -> tuple[GuestLink, str]:
    """A new link for one recipient to this invoice's review, and its URL (the only time the URL exists). Audited
    without the token. A guest reviewer of the same email on this invoice moves to the new link."""
    address = clean_email(email)
    person = clean_name(name, address)
    tid = uuid.UUID(str(tenant_id))
    if session.execute(select(ReviewInvoice.id).where(ReviewInvoice.invoice_id == int(invoice_id))).first() is None:
        raise GuestError("This invoice is not in review, so it cannot be shared.")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = _now()
    link = GuestLink(id=uuid.uuid4(), tenant_id=tid, invoice_id=int(invoice_id), token_hash=hash_token(token),
                     member_id=member_id, created_by=created_by, created_at=now,
                     expires_at=now + dt.timedelta(days=link_days(session, tid)))
    link.email_enc = services.keyring.encrypt(address, _ref(link, "email"))
    link.name_enc = services.keyring.encrypt(person, _ref(link, "name"))
    session.add(link)
    session.flush()
    earlier = _same_recipient(session, services.keyring, invoice_id, address, exclude=link.id)
    if earlier:
        for reviewer in session.execute(select(Reviewer).where(Reviewer.guest_id.in_(earlier))).scalars():
            reviewer.guest_id = link.id
    record(session, tid, actor or Actor.system(), "review.guest_link_created", target_type="guest_link",
           target_id=link.id, after={"invoice_id": link.invoice_id, "expires_at": link.expires_at.isoformat(),
                                     "member_id": member_id},
           origin=origin)
    return link, url_of(services, token)


def _same_recipient(session: Session, keyring: Keyring, invoice_id: int, email: str,
                    exclude: uuid.UUID) -> list[uuid.UUID]:
    """This invoice's other links to ``email`` (an invoice has a handful: decrypting them is cheap)."""
    wanted = email.casefold()
    return [link.id for link in links_of(session, invoice_id)
            if link.id != exclude and email_of(keyring, link).casefold() == wanted]


def invite(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice_id: int, *, email: str,
           name: str, user: Any, actor: Actor, origin: Origin | None = None,
           as_reviewer: bool = True) -> tuple[GuestLink, str]:
    """The panel's "Invite a guest reviewer": a link, and (``as_reviewer``) the guest added as a reviewer."""
    link, url = issue_link(session, services, tenant_id, invoice_id, email=email, name=name, member_id=None,
                           created_by=getattr(user, "id", None), actor=actor, origin=origin)
    if as_reviewer and session.execute(select(Reviewer.id).where(Reviewer.guest_id == link.id)).first() is None:
        guest_name = guest_of(services.keyring, link).guest_label
        session.add(Reviewer(id=uuid.uuid4(), tenant_id=link.tenant_id, invoice_id=link.invoice_id, guest_id=link.id,
                             name=guest_name[:200], state="waiting", source="manual",
                             added_by=getattr(user, "id", None), added_at=_now()))
        record(session, link.tenant_id, actor, "review.reviewer_added", target_type="invoice",
               target_id=link.invoice_id, after={"guest_link": str(link.id)}, origin=origin)
        events.add(session, services.keyring, link.tenant_id, link.invoice_id, "reviewer_added",
                   EventActor.for_user(user), {"name": guest_name})
        session.flush()
    return link, url


def revoke(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice_id: int,
           link_id: uuid.UUID | str, *, user: Any, actor: Actor, origin: Origin | None = None) -> GuestLink | None:
    """Revoke one link of this invoice, at once (audited); None when there is no such link. Twice changes nothing.
    A guest reviewer stays on the list (their decision, if any, stands); they can no longer act."""
    try:
        lid = uuid.UUID(str(link_id))
    except ValueError:
        return None
    link = session.get(GuestLink, lid)
    if link is None or link.invoice_id != int(invoice_id):
        return None
    if link.revoked_at is None:
        link.revoked_at, link.revoked_by = _now(), getattr(user, "id", None)
        record(session, link.tenant_id, actor, "review.guest_link_revoked", target_type="guest_link",
               target_id=link.id, after={"invoice_id": link.invoice_id}, origin=origin)
        session.flush()
    return link


# --- resolving (the guest's side) -------------------------------------------------------------------------------

def lookup(session: Session, token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(tenant id, link id) of a token, whatever the link's state; None when unknown or malformed. Pre-tenant."""
    if not isinstance(token, str) or not _TOKEN_SHAPE.match(token):
        return None
    row = session.execute(_LOOKUP, {"h": hash_token(token)}).first()
    return (row.tenant_id, row.link_id) if row is not None else None


def guest_of(keyring: Keyring, link: GuestLink) -> Guest:
    return Guest(link.id, link.tenant_id, link.invoice_id, name_of(keyring, link), email_of(keyring, link))


def active(session: Session, keyring: Keyring, link_id: uuid.UUID | str, *, touch: bool = True) -> Guest | None:
    """The guest of a link that still works (the session's tenant must be the link's); None when revoked, expired
    or gone. Notes when it was last used."""
    try:
        link = session.get(GuestLink, uuid.UUID(str(link_id)))
    except ValueError:
        return None
    now = _now()
    if link is None or state_of(link, now) != "active":
        return None
    if touch and (link.last_used_at is None or now - link.last_used_at >= TOUCH_EVERY):
        link.last_used_at = now
    return guest_of(keyring, link)


def assigned(session: Session, guest: Guest) -> Reviewer | None:
    """The guest's reviewer row on their invoice, if they are assigned."""
    return session.execute(select(Reviewer).where(Reviewer.invoice_id == guest.invoice_id,
                                                  Reviewer.guest_id == guest.link_id)).scalar_one_or_none()


# --- the staff panel ----------------------------------------------------------------------------------------------

def entries(session: Session, keyring: Keyring, invoice_id: int, tz: dt.tzinfo) -> list[LinkEntry]:
    links = links_of(session, invoice_id)
    ids = [link.id for link in links]
    reviewing = set(session.execute(select(Reviewer.guest_id).where(Reviewer.guest_id.in_(ids))).scalars()) \
        if ids else set()
    now = _now()
    return [LinkEntry(link.id, name_of(keyring, link), email_of(keyring, link), state_of(link, now),
                      when(link.created_at, tz, now), when(link.expires_at, tz, now),
                      when(link.last_used_at, tz, now) if link.last_used_at else "never",
                      link.id in reviewing) for link in links]


def panel(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any, *,
          new_url: str | None = None, new_for: str = "", error: GuestError | None = None,
          form: dict[str, str] | None = None, message: str | None = None) -> dict[str, Any]:
    """What ``review/_guest_links.html`` shows for this invoice to this user (its context variable: ``guest_panel``).

    ``new_url`` is a link just made (shown once, with Copy). Who may invite and revoke is the template's
    ``can('manage_reviewers')``; the routes check it again."""
    tz = tenant_zone(session, tenant_id)
    in_review = session.execute(select(ReviewInvoice.id).where(ReviewInvoice.invoice_id == invoice_id)
                                ).first() is not None
    return {"invoice_id": invoice_id, "links": entries(session, services.keyring, invoice_id, tz),
            "in_review": in_review, "days": link_days(session, tenant_id), "new_url": new_url, "new_for": new_for,
            "error": error, "form": form or {}, "message": message}
