"""Public links: create, the invoice's one stable link (``current_link``), resolve, revoke, record views.

A token is 32 random bytes (256 bits) from ``secrets``, URL-safe base64. Its SHA-256 is the lookup; the token itself
is kept only encrypted with the keyring (``token_enc``), so the same link can be copied again instead of a new one
per click. Resolving happens before any tenant is known, through the one narrow database function
``bi_public_link_lookup`` (token hash in; tenant, link, invoice and state out). Views record usage metadata only:
which invoice, when, its total, page or PDF, client or staff.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.invoices.models import LinkView, PublicLink
from app.security.crypto import FieldRef, Keyring
from app.services import Services

TOKEN_BYTES = 32
MAX_EXPIRY_DAYS = 365
# What a token in a URL can look like (anything else is "not valid" without touching the database).
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_LOCK_NAMESPACE = 0x504C4E4B  # "PLNK": our advisory locks for one invoice's stable link, apart from others
_LOOKUP = text("select tenant_id, link_id, invoice_id, status from bi_public_link_lookup(:h)")


class LinkError(ValueError):
    """Bad input when creating a link (shown inline)."""


@dataclass(frozen=True)
class ResolvedLink:
    tenant_id: uuid.UUID
    link_id: uuid.UUID
    invoice_id: int
    status: str  # active | expired | revoked


@dataclass(frozen=True)
class NewLink:
    link: PublicLink
    token: str  # stored only encrypted (token_enc), never in plain


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def public_path(token: str) -> str:
    return f"/i/{token}"


def expiry_from_days(days: int | str | None, now: datetime | None = None) -> datetime | None:
    """None for "never"; otherwise a whole number of days from now, 1 to MAX_EXPIRY_DAYS."""
    if days in (None, ""):
        return None
    try:
        n = int(days)
    except (TypeError, ValueError) as exc:
        raise LinkError("Expiry must be a whole number of days.") from exc
    if not 1 <= n <= MAX_EXPIRY_DAYS:
        raise LinkError(f"Expiry must be between 1 and {MAX_EXPIRY_DAYS} days (or empty for no expiry).")
    return (now or datetime.now(UTC)) + timedelta(days=n)


def _token_ref(link: PublicLink) -> FieldRef:
    return FieldRef(link.tenant_id, PublicLink.__tablename__, link.id, "token")


def create_link(session: Session, tenant_id: uuid.UUID | str, invoice_id: int, *, actor: Actor,
                created_by: uuid.UUID | None = None, expires_at: datetime | None = None,
                origin: Origin | None = None, keyring: Keyring | None = None) -> NewLink:
    """A new link to ``invoice_id`` (audited without the token). With ``keyring`` the token is kept encrypted so
    the link can be copied again; without one it is shown once (no caller does that any more)."""
    if int(invoice_id) <= 0:
        raise LinkError("That is not an invoice id.")
    token = new_token()
    link = PublicLink(id=uuid.uuid4(), tenant_id=uuid.UUID(str(tenant_id)), invoice_id=int(invoice_id),
                      token_hash=hash_token(token), created_by=created_by, expires_at=expires_at)
    if keyring is not None:
        link.token_enc = keyring.encrypt(token, _token_ref(link))
    session.add(link)
    session.flush()
    record(session, link.tenant_id, actor, "invoices.public_link_created", target_type="public_link",
           target_id=link.id, after={"invoice_id": link.invoice_id,
                                     "expires_at": expires_at.isoformat() if expires_at else None},
           origin=origin)
    return NewLink(link, token)


def link_token(keyring: Keyring, link: PublicLink) -> str | None:
    """The token of a link that kept it (links made before 0017, or before the CLI kept them, did not)."""
    if link.token_enc is None:
        return None
    return keyring.decrypt(link.token_enc, _token_ref(link))


def live_copyable(session: Session, invoice_id: int, now: datetime | None = None) -> PublicLink | None:
    """The invoice's stable link: active (not revoked, not expired) and copyable again; one that never expires
    first, then the oldest, so a short-lived extra link never displaces it."""
    now = now or datetime.now(UTC)
    return session.execute(
        select(PublicLink).where(PublicLink.invoice_id == int(invoice_id), PublicLink.revoked_at.is_(None),
                                 PublicLink.token_enc.is_not(None),
                                 or_(PublicLink.expires_at.is_(None), PublicLink.expires_at > now))
        .order_by(PublicLink.expires_at.is_not(None), PublicLink.created_at, PublicLink.id).limit(1)
    ).scalar_one_or_none()


def current_link(services: Services, session: Session, tenant_id: uuid.UUID | str, invoice_id: int,
                 created_by: uuid.UUID | None = None, *, actor: Actor | None = None,
                 origin: Origin | None = None, expires_at: datetime | None = None) -> tuple[PublicLink, str]:
    """The invoice's one stable public link and its full URL: the existing live one, or a new one (audited) when
    there is none (never made, revoked or expired). Concurrent callers for one invoice wait for each other, so two
    clicks at once still make one link."""
    if int(invoice_id) <= 0:
        raise LinkError("That is not an invoice id.")
    session.execute(select(func.pg_advisory_xact_lock(
        _LOCK_NAMESPACE, func.hashtext(f"{uuid.UUID(str(tenant_id))}:{int(invoice_id)}"))))
    link = live_copyable(session, invoice_id)
    token = link_token(services.keyring, link) if link is not None else None
    if link is None or token is None:
        new = create_link(session, tenant_id, invoice_id, actor=actor or Actor.system("sending"),
                          created_by=created_by, expires_at=expires_at, origin=origin, keyring=services.keyring)
        link, token = new.link, new.token
    return link, services.config.BASE_URL.rstrip("/") + public_path(token)


def resolve(session: Session, token: str) -> ResolvedLink | None:
    """The link a token names, whatever its state; None when the token is unknown or malformed."""
    if not isinstance(token, str) or not _TOKEN_SHAPE.match(token):
        return None
    row = session.execute(_LOOKUP, {"h": hash_token(token)}).first()
    if row is None:
        return None
    return ResolvedLink(row.tenant_id, row.link_id, int(row.invoice_id), row.status)


def links_for_invoice(session: Session, invoice_id: int) -> list[PublicLink]:
    return list(session.execute(select(PublicLink).where(PublicLink.invoice_id == int(invoice_id))
                                .order_by(PublicLink.created_at.desc())).scalars())


def revoke(session: Session, link_id: uuid.UUID | str, *, actor: Actor, invoice_id: int | None = None,
           revoked_by: uuid.UUID | None = None, origin: Origin | None = None) -> PublicLink | None:
    """Revoke one link (audited); None when this tenant has no such link (of ``invoice_id``, when given).
    Revoking twice changes nothing."""
    try:
        lid = uuid.UUID(str(link_id))
    except ValueError:
        return None
    link = session.get(PublicLink, lid)
    if link is None or (invoice_id is not None and link.invoice_id != int(invoice_id)):
        return None
    if link.revoked_at is None:
        link.revoked_at, link.revoked_by = datetime.now(UTC), revoked_by
        session.flush()
        record(session, link.tenant_id, actor, "invoices.public_link_revoked", target_type="public_link",
               target_id=link.id, before={"status": "active"},
               after={"status": "revoked", "invoice_id": link.invoice_id}, origin=origin)
    return link


def revoke_all(session: Session, tenant_id: uuid.UUID | str, invoice_id: int, *, actor: Actor,
               revoked_by: uuid.UUID | None = None, origin: Origin | None = None) -> int:
    """Revoke every live link of one invoice in one audited step; returns how many."""
    now = datetime.now(UTC)
    result = session.execute(
        update(PublicLink).where(PublicLink.invoice_id == int(invoice_id), PublicLink.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=revoked_by).returning(PublicLink.id))
    ids = [str(i) for i in result.scalars()]
    if ids:
        record(session, tenant_id, actor, "invoices.public_links_revoked_all", target_type="invoice",
               target_id=int(invoice_id), after={"revoked": len(ids), "link_ids": ids}, origin=origin)
    return len(ids)


def record_view(session: Session, tenant_id: uuid.UUID | str, invoice_id: int, total: Decimal, *, kind: str,
                viewer: str, link_id: uuid.UUID | None = None) -> None:
    """One usage row. A client's view also stamps the link's last view; a staff preview does not."""
    session.add(LinkView(tenant_id=uuid.UUID(str(tenant_id)), link_id=link_id, invoice_id=int(invoice_id),
                         total=Decimal(total), kind=kind, viewer=viewer))
    if link_id is not None and viewer == "client":
        session.execute(update(PublicLink).where(PublicLink.id == link_id)
                        .values(last_viewed_at=datetime.now(UTC), view_count=PublicLink.view_count + 1))
    session.flush()
