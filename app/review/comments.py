"""Comments on an invoice's review, with @mentions of users and ConnectWise members (stored as references, never
markup); mentioned people added as reviewers, emailed or notified.

A comment is the timeline's "commented" event. Its encrypted detail holds ``text`` (plain text as typed),
``mentions`` (``[{"type": "user"|"member"|"email", "ref": <user id | member id | address>, "name": ...}]``) and
``emailed`` (``[{"name": ..., "to": <address>}]``, who it was also mailed to). The audit row carries the event id,
the mentions' references and what was done, never the text (comments quote invoices).

Mentions come two ways: picked in the popup (the form's ``mention`` values, ``user:<uuid>`` / ``member:<id>`` /
``email:<address>``), or an address typed after ``@`` in the text (so a mention works without the script too). An
address of an active user is that user. On display the text is split around each mention's ``@Name`` into
segments the template escapes one by one; a mention whose ``@Name`` the text no longer holds is shown after it.

A mentioned address with no account gets a guest link to this invoice (``app.review.guests.issue_link``): made
here and shown once to copy when not mailed, made by the mail job when mailed (so the URL never sits in a queued
job). A ConnectWise member with no user is named in the comment (and may become a reviewer) but nobody tells them:
we keep no member's email address. A guest's own comment mentions nobody (see ``post``).

Who may do what is checked by the caller (the routes know the permission matrix, which sits above this package):
``post`` adds reviewers and sends mail only when told to.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import render_template
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.jobs.queue import enqueue
from app.jobs.runtime import job
from app.mail.send import Message, send
from app.review import events, guests, notifications, reviewers
from app.review.events import EventActor
from app.review.models import Event, Reviewer, ReviewInvoice
from app.security.crypto import Keyring
from app.services import Services
from app.tenancy import tenant_session
from app.users.emails import normalise_email
from app.users.models import User

log = logging.getLogger(__name__)

MAX_TEXT = 4000
MAX_MENTIONS = 20
PEOPLE_LISTED = 8
MAIL_QUEUE = "mail"
_QUEUED = "review.comments.mail"
# We store no ConnectWise member's email address, so a member without a user can be named, not told.
MEMBER_DETAIL = "ConnectWise member, no account: not notified or emailed"
# An address typed after "@": "@ap@client.example" (the "@" at the start of the text or after a space).
_TYPED_EMAIL = re.compile(r"(?:(?<=\s)|^)@([A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


class CommentError(ValueError):
    """A comment that cannot be posted, with the sentence to show beside the box."""


@dataclass(frozen=True)
class Mention:
    """One person a comment mentions: a user, a ConnectWise member without a user, or an address with no account."""

    type: str  # user | member | email
    ref: str
    name: str
    email: str = ""  # where mail goes (a user's address, or the typed one); "" for a member-only person

    @property
    def key(self) -> str:
        return f"{self.type}:{self.ref}"

    def detail(self) -> dict[str, str]:
        return {"type": self.type, "ref": self.ref, "name": self.name}


@dataclass
class Posted:
    """What posting did: the event, the mentions, who became a reviewer, who was notified and who will be mailed."""

    event: Event
    mentions: list[Mention]
    reviewers_added: list[str] = field(default_factory=list)
    notified: int = 0
    emailed: list[str] = field(default_factory=list)
    guest_links: list[tuple[Any, str]] = field(default_factory=list)
    # ConnectWise members with no user here: nobody tells them (we keep no member's email address).
    unreached: list[str] = field(default_factory=list)


# --- the popup --------------------------------------------------------------------------------------------------


def people(session: Session, invoice_id: int, query: str, limit: int = PEOPLE_LISTED) -> list[dict[str, str]]:
    """Whom the mention popup offers for what follows the "@": users and ConnectWise members known here, never a
    current reviewer of this invoice; an address typed in full is offered as itself when no user has it."""
    q = query.strip().lstrip("@").strip()[:100]
    found = [{"key": c.key, "name": c.name,
              "detail": MEMBER_DETAIL if c.key.startswith("member:") else c.detail}
             for c in reviewers.candidates(session, invoice_id, q, limit)]
    if _EMAIL.match(q) and not any(p["detail"].lower() == q.lower() for p in found):
        known = session.execute(select(User.id).where(User.email == normalise_email(q))).first()
        if known is None:
            found.append({"key": f"email:{q}", "name": q, "detail": "No account: gets a guest link"})
    return found


# --- reading what was typed ---------------------------------------------------------------------------------------


def clean_text(raw: str) -> str:
    text = (raw or "").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text.strip()


def typed_emails(text: str) -> list[str]:
    return [m.group(1) for m in _TYPED_EMAIL.finditer(text)]


def resolve(session: Session, keys: Iterable[str], text: str = "") -> list[Mention]:
    """The mentions the form's picks and the text's typed addresses name, each person once, in order;
    CommentError for a pick that names nobody known here."""
    wanted = [k.strip() for k in keys if k and k.strip()] + [f"email:{e}" for e in typed_emails(text)]
    out: dict[str, Mention] = {}
    for key in wanted:
        mention = _one(session, key)
        out.setdefault(mention.key, mention)
    if len(out) > MAX_MENTIONS:
        raise CommentError(f"Mention at most {MAX_MENTIONS} people in one comment.")
    return list(out.values())


def _one(session: Session, key: str) -> Mention:
    kind, _, ref = key.partition(":")
    if kind == "email":
        address = ref.strip()
        if not _EMAIL.match(address) or len(address) > 254:
            raise CommentError(f"{address[:80]} is not an email address.")
        user = session.execute(select(User).where(User.email == normalise_email(address))).scalar_one_or_none()
        if user is not None:
            if not user.active:
                raise CommentError(f"{address[:80]} belongs to a user who is no longer active here.")
            return Mention("user", str(user.id), reviewers.user_name(user), user.email)
        return Mention("email", normalise_email(address), address, normalise_email(address))
    if kind == "user":
        try:
            user = session.get(User, uuid.UUID(ref))
        except ValueError:
            user = None
        if user is None or not user.active:
            raise CommentError("A mentioned person is not an active user of this workspace.")
        return Mention("user", str(user.id), reviewers.user_name(user), user.email)
    if kind == "member" and ref.isdigit() and len(ref) <= 9:
        member_id = int(ref)
        user = session.execute(select(User).where(User.cw_member_id == member_id, User.active.is_(True))
                               ).scalar_one_or_none()
        if user is not None:
            return Mention("user", str(user.id), reviewers.user_name(user), user.email)
        name = session.execute(select(Reviewer.name).where(Reviewer.member_id == member_id).limit(1)).scalar()
        if name is None:
            raise CommentError("A mentioned ConnectWise member is not known here.")
        return Mention("member", str(member_id), name)
    raise CommentError("Pick mentioned people from the list.")


# --- posting ------------------------------------------------------------------------------------------------------


def post(session: Session, services: Services, tenant_id: uuid.UUID | str, invoice_id: int, text: str, *,
         author: EventActor, actor: Actor, origin: Origin | None = None, mentions: Sequence[str] = (),
         add_reviewers: bool = False, email: bool = False, by: Any = None) -> Posted:
    """Post a comment (a "commented" event and an audit row), notify mentioned users, and, when told to (the caller
    has checked the permissions), add mentioned users and members as reviewers and mail each mentioned person who
    has an address (one job each, queued when this transaction commits). Mentioned addresses without an account
    get a guest link to this invoice. ``author`` is who the timeline names (a user's or a guest's EventActor);
    ``by`` is the signed-in user (None for a guest), the reviewers' "added by"."""
    tid = uuid.UUID(str(tenant_id))
    text = clean_text(text)
    if not text:
        raise CommentError("Write a comment first.")
    if len(text) > MAX_TEXT:
        raise CommentError(f"A comment can be at most {MAX_TEXT:,} characters (this one has {len(text):,}).")
    if session.execute(select(ReviewInvoice.id).where(ReviewInvoice.invoice_id == invoice_id)).first() is None:
        raise CommentError("This invoice is not in review.")
    # A guest's comment mentions nobody: a typed address would otherwise mint a new guest link (outliving and
    # surviving the revocation of the guest's own) and hand its URL to an outsider, and a guest cannot see who
    # works here to pick from. So the text stays text, with no reviewers added and no mail sent.
    if author.type == "guest":
        mentions, add_reviewers, email = (), False, False
    found = resolve(session, mentions, text) if author.type != "guest" else []
    mailed = [m for m in found if email and m.email and not (m.type == "user" and m.ref == author.id)]
    detail: dict[str, Any] = {"text": text, "mentions": [m.detail() for m in found],
                              "emailed": [{"name": m.name, "to": m.email} for m in mailed]}
    ev = events.add(session, services.keyring, tid, invoice_id, "commented", author, detail)
    session.flush()
    done = Posted(ev, found, emailed=[m.name for m in mailed],
                  unreached=[m.name for m in found if m.type == "member"])
    if add_reviewers:
        done.reviewers_added = _add_reviewers(session, services.keyring, tid, invoice_id, found, by, actor, origin)
    mentioned_users = {uuid.UUID(m.ref) for m in found if m.type == "user" and m.ref != author.id}
    done.notified = notifications.notify_mentioned(session, tid, invoice_id, mentioned_users, event_id=ev.id,
                                                   actor_name=author.name)
    # A guest link is made here only for people who are not mailed; a mailed one is made by the mail job, so the
    # link (a secret) never sits in a queued job.
    for m in found:
        if m.type == "email" and m not in mailed:
            link = _guest_link(session, services, tid, invoice_id, m, by, actor, origin)
            if link is not None:
                done.guest_links.append(link)
    record(session, tid, actor, "review.commented", target_type="invoice", target_id=invoice_id, after={
        "event_id": str(ev.id), "mentions": [{"type": m.type, "ref": m.ref} for m in found],
        "reviewers_added": done.reviewers_added, "notified": done.notified,
        "emailed": [m.email for m in mailed]}, origin=origin)
    for index, _ in enumerate(mailed):
        _mail_after_commit(session, services, str(tid), str(ev.id), index)
    return done


def _add_reviewers(session: Session, keyring: Keyring, tenant_id: uuid.UUID, invoice_id: int,
                   found: Sequence[Mention], by: Any, actor: Actor, origin: Origin | None) -> list[str]:
    added = []
    for m in found:
        if m.type not in ("user", "member"):
            continue
        try:
            row = reviewers.add(session, keyring, tenant_id, invoice_id, m.key, by=by, actor=actor, origin=origin)
        except reviewers.ReviewerError:
            continue  # already a reviewer (the popup leaves reviewers out; a typed address may name one)
        row.source = "mention"
        added.append(row.name)
    return added


def _guest_link(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, m: Mention,
                by: Any, actor: Actor | None = None, origin: Origin | None = None) -> tuple[Any, str] | None:
    """A guest link to this invoice for a mentioned address with no account, and its URL; None when the invoice
    left review meanwhile (the mail job runs later)."""
    created_by = getattr(by, "id", None) if getattr(by, "audit_actor", None) is None else None
    try:
        link, url = guests.issue_link(session, services, tenant_id, invoice_id, email=m.email, name=m.name,
                                      member_id=None, created_by=created_by, actor=actor, origin=origin)
    except guests.GuestError:
        return None
    return link, url


def _mail_after_commit(session: Session, services: Services, tenant_id: str, event_id: str, index: int) -> None:
    """Queue the mail job when the comment commits (the worker must find it), never on rollback."""
    queued: list[tuple[Any, str, str, int]] | None = session.info.get(_QUEUED)
    if queued is None:
        queued = session.info[_QUEUED] = []

        @sa_event.listens_for(session, "after_commit")
        def _send(s: Session) -> None:
            for redis, tid, eid, i in s.info.pop(_QUEUED, []):
                enqueue(redis, mention_email_job, tid, eid, i, queue=MAIL_QUEUE)

        @sa_event.listens_for(session, "after_rollback")
        def _drop(s: Session) -> None:
            s.info.pop(_QUEUED, None)

    queued.append((services.redis, tenant_id, event_id, index))


@job
def mention_email_job(services: Services, tenant_id: str, event_id: str, index: int) -> str:
    """Mail one mentioned person the comment (text and HTML, the text escaped) with a link to the invoice, or for
    someone with no account a guest link made now."""
    with tenant_session(tenant_id, services.session_factory) as session:
        ev = session.get(Event, uuid.UUID(event_id))
        if ev is None:
            return "gone"
        entry = next((e for e in events.of_invoice(session, services.keyring, ev.invoice_id) if e.id == ev.id), None)
        recipients = list(entry.detail.get("emailed") or []) if entry else []
        if entry is None or not 0 <= int(index) < len(recipients):
            return "gone"
        to, detail = recipients[int(index)], entry.detail
        guest = next((m for m in detail.get("mentions") or [] if m.get("type") == "email"
                      and m.get("ref") == to.get("to")), None)
        invoice = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == ev.invoice_id)
                                  ).scalar_one_or_none()
        url = f"{services.config.BASE_URL.rstrip('/')}/review/{ev.invoice_id}"
        if guest is not None:
            link = _guest_link(session, services, uuid.UUID(tenant_id), ev.invoice_id,
                               Mention("email", guest["ref"], str(to.get("name") or guest["ref"]), guest["ref"]),
                               None)
            if link is None:
                return "no guest link"
            url = link[1]
        context = {"author": entry.actor.name, "number": invoice.invoice_number if invoice else str(ev.invoice_id),
                   "company": invoice.company_name if invoice else "", "segments": segments(detail),
                   "text": detail.get("text", ""), "url": url, "guest": guest is not None,
                   "name": to.get("name") or ""}
    subject = f"{context['author']} mentioned you on invoice {context['number']}"
    send(services, Message(str(to["to"]), subject[:200], render_template("mail/review_mention.txt", **context),
                           render_template("mail/review_mention.html", **context)))
    return "sent"


# --- showing ------------------------------------------------------------------------------------------------------


def segments(detail: Mapping[str, Any]) -> list[dict[str, str]]:
    """The comment's text as pieces to render one by one: ``{"text": ...}`` or ``{"mention": name, "type": ...}``;
    each mention at its first ``@Name`` in the text, or after the text when the text no longer holds it."""
    text = detail.get("text") if isinstance(detail.get("text"), str) else ""
    pending = [m for m in detail.get("mentions") or [] if isinstance(m, dict) and m.get("name")]
    out: list[dict[str, str]] = []
    rest = str(text)
    while rest and pending:
        hits = [(rest.find("@" + str(m["name"])), m) for m in pending]
        hits = [(at, m) for at, m in hits if at >= 0]
        if not hits:
            break
        at, m = min(hits, key=lambda h: (h[0], -len(str(h[1]["name"]))))
        if at:
            out.append({"text": rest[:at]})
        out.append({"mention": str(m["name"]), "type": str(m.get("type", ""))})
        rest = rest[at + 1 + len(str(m["name"])):]
        pending.remove(m)
    if rest:
        out.append({"text": rest})
    for m in pending:
        out.append({"text": " "})
        out.append({"mention": str(m["name"]), "type": str(m.get("type", ""))})
    return out


def sent_to(detail: Mapping[str, Any]) -> str:
    """Whom the comment was also mailed to, "Brian Chen, ap@client.example" ("" when nobody)."""
    return ", ".join(str(e.get("name") or e.get("to")) for e in detail.get("emailed") or [] if isinstance(e, dict))


def panel(session: Session, services: Services, tenant_id: uuid.UUID, invoice_id: int, user: Any) -> dict[str, Any]:
    """What ``review/_comment_box.html`` shows for this invoice to this user (its context variable: ``comment_panel``).

    The box is shown on the review page: this user's notifications about this invoice are read there."""
    user_id = getattr(user, "id", None) if getattr(user, "audit_actor", None) is None else None
    if isinstance(user_id, uuid.UUID):
        notifications.mark_read(session, user_id, invoice_id=invoice_id)
    in_review = session.execute(select(ReviewInvoice.id).where(ReviewInvoice.invoice_id == invoice_id)
                                ).first() is not None
    return {"invoice_id": invoice_id, "in_review": in_review, "error": None, "notice": None, "text": "",
            "guest_urls": []}
