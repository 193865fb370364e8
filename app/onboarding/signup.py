"""Self-serve sign-up: what a new workspace may be called, which addresses are personal ones, the time zone the
browser suggested, and making the workspace with its owner on the Pro trial (audited in the new tenant's log).

Proving the email (an emailed code or a provider that vouches for it) and signing the owner in belong to the pages;
this module starts once the address is proven. The session keys that carry a sign-up through the SSO callback are
named here so the sign-in pages and the sign-up pages agree on them without importing each other.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.tenancy import no_tenant_session
from app.tenants.models import TenantSettings
from app.tenants.service import create_tenant
from app.users.models import User

NAME_MIN, NAME_MAX = 2, 200
PERSON_MAX = 200
INTENT_SECONDS = 600
# Set by "Continue with Google/Microsoft" on the sign-up page; the SSO callback hands the identity to sign-up
# (under IDENTITY_KEY) instead of signing in when it finds this for its provider.
SSO_INTENT_KEY = "signup_sso_intent"
SSO_IDENTITY_KEY = "signup_sso_identity"

# Personal mailbox providers: such a sign-up is allowed, noted on the form and in the audit row. Suffix "." entries
# match every country domain of the provider (gmx.de, gmx.net, ...).
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com", "ymail.com",
    "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "pm.me", "web.de", "t-online.de",
    "mail.com", "zoho.com", "yandex.com", "yandex.ru", "mail.ru", "fastmail.com", "tutanota.com", "tuta.io",
    "qq.com", "163.com", "hey.com",
})
FREE_MAIL_PREFIXES = ("gmx.", "yahoo.", "hotmail.", "outlook.", "live.", "libero.", "orange.", "free.")


class SignupError(ValueError):
    """A value the sign-up form refuses; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class NewWorkspace:
    tenant_id: uuid.UUID
    tenant_name: str
    owner_id: uuid.UUID


def is_free_mail(email: str) -> bool:
    """Whether the address is at a personal mailbox provider (gmail.com, gmx.de, ...)."""
    domain = email.rsplit("@", 1)[-1].strip().lower()
    return domain in FREE_MAIL_DOMAINS or domain.startswith(FREE_MAIL_PREFIXES)


def clean_workspace_name(raw: str | None) -> str:
    """The company name trimmed (inner runs of spaces made one), 2..200 characters, else SignupError."""
    name = " ".join((raw or "").split())
    if len(name) < NAME_MIN:
        raise SignupError("workspace", "Enter your company's name (at least 2 characters), like Acme IT Services.")
    if len(name) > NAME_MAX:
        raise SignupError("workspace", f"Keep the company name to {NAME_MAX} characters or fewer "
                                       f"(this one has {len(name)}).")
    return name


def clean_person_name(raw: str | None) -> str:
    """The owner's name trimmed, 1..200 characters, else SignupError."""
    name = " ".join((raw or "").split())
    if not name:
        raise SignupError("name", "Enter your name, so your colleagues know who set this up.")
    if len(name) > PERSON_MAX:
        raise SignupError("name", f"Keep your name to {PERSON_MAX} characters or fewer.")
    return name


def browser_zone(raw: str | None) -> str:
    """The zone the browser reported when zoneinfo knows it, else UTC (the field is hidden: nothing to correct)."""
    name = (raw or "").strip()
    if not name or len(name) > 64:
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def create_workspace(factory: Callable[[], Session], *, name: str, email: str, person: str, timezone: str,
                     method: str, origin: Origin | None = None) -> NewWorkspace:
    """Make the workspace on the Pro trial with ``email`` as its owner, in ``timezone``; audits
    ``tenant.signed_up`` (how the email was proven, and whether it is a personal address) in its log."""
    with no_tenant_session(factory) as session:
        tenant = create_tenant(session, name, email, person, Actor.system("sign-up"), trial=True)
        owner = session.execute(select(User).where(User.tenant_id == tenant.id)).scalar_one()
        settings = session.execute(select(TenantSettings)).scalar_one()
        settings.timezone = timezone
        record(session, tenant.id, Actor.user(owner.id, owner.email), "tenant.signed_up", target_type="tenant",
               target_id=tenant.id, after={"method": method, "free_mail": is_free_mail(email),
                                           "timezone": timezone, "plan": "pro", "status": "trialing"},
               origin=origin)
        return NewWorkspace(tenant.id, tenant.name, owner.id)


def mark_sso_intent(session: MutableMapping[str, Any], provider: str) -> None:
    session[SSO_INTENT_KEY] = {"provider": provider, "until": time.time() + INTENT_SECONDS}


def take_sso_intent(session: MutableMapping[str, Any], provider: str) -> bool:
    """Whether this SSO round trip was started by sign-up for ``provider`` (single use, expires)."""
    intent = session.pop(SSO_INTENT_KEY, None)
    return (isinstance(intent, dict) and intent.get("provider") == provider
            and float(intent.get("until", 0)) > time.time())
