"""Storing a tenant's branding: load (defaults when never saved), save (audited, logo as a hash), the logo.

The settings column holds ``branding_to_dict`` plus the PDF paper size, which is a tenant choice that is not part
of the look (``Branding``): "A4", "Letter", or "auto" (by the remit-to country: Letter in the US and Canada, A4
elsewhere; ``app.invoices.templating.page_size_for`` decides with the document in hand). A workspace that never
saved its branding has "auto". The logo is stored already re-encoded (``app.branding.logo``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, changes, record
from app.branding.logo import Logo
from app.branding.model import Branding, branding_from_dict, branding_to_dict, default_branding
from app.branding.models import BrandingSettings
from app.tenants.models import TenantSettings

PAGE_SIZES = ("A4", "Letter")
DEFAULT_PAGE_SIZE = "A4"
AUTO_PAGE_SIZE = "auto"
PAGE_SIZE_CHOICES = (AUTO_PAGE_SIZE, *PAGE_SIZES)
PAGE_SIZE_LABELS = {AUTO_PAGE_SIZE: "By the remit-to country (Letter in the US and Canada, A4 elsewhere)",
                    "A4": "A4", "Letter": "Letter"}


@dataclass(frozen=True)
class StoredBranding:
    branding: Branding
    page_size: str
    version: int
    logo: bytes | None
    logo_mime: str | None
    logo_sha256: str | None
    # What the tenant chose ("auto", "A4", "Letter"); ``page_size`` is that, or A4 for "auto" where no document
    # is at hand to decide by.
    page_size_choice: str = AUTO_PAGE_SIZE

    @property
    def has_logo(self) -> bool:
        return self.logo is not None


def workspace_locale(session: Session, tenant_id: uuid.UUID | str) -> str:
    """The workspace's locale (tenant_settings.locale), en-US when unset."""
    found = session.scalar(select(TenantSettings.locale).where(TenantSettings.tenant_id == uuid.UUID(str(tenant_id))))
    return found or "en-US"


def load(session: Session, tenant_id: uuid.UUID | str) -> StoredBranding:
    row = session.get(BrandingSettings, uuid.UUID(str(tenant_id)))
    locale = workspace_locale(session, tenant_id)
    if row is None:
        return StoredBranding(replace(default_branding(), locale=locale), DEFAULT_PAGE_SIZE, 0, None, None, None)
    settings = row.settings if isinstance(row.settings, dict) else {}
    stored_size = settings.get("page_size")
    choice = stored_size if isinstance(stored_size, str) and stored_size in PAGE_SIZE_CHOICES else AUTO_PAGE_SIZE
    page_size = choice if choice in PAGE_SIZES else DEFAULT_PAGE_SIZE
    return StoredBranding(replace(branding_from_dict(settings), locale=locale), page_size, row.version, row.logo,
                          row.logo_mime, row.logo_sha256, choice)


def check_page_size(value: Any) -> str:
    value = str(value or "").strip()
    if value.lower() == AUTO_PAGE_SIZE:
        return AUTO_PAGE_SIZE
    if value.lower() == "letter":
        return "Letter"
    if value.upper() == "A4":
        return "A4"
    raise ValueError("Choose A4 or Letter, or the paper of the remit-to country")


def _audit_view(branding: Branding, page_size: str, logo_sha256: str | None) -> dict[str, Any]:
    """Flat before/after for the audit log: each setting by name, time detail per type, the logo as a hash."""
    data = branding_to_dict(branding)
    details = data.pop("time_detail")
    flat: dict[str, Any] = {**data, "page_size": page_size, "logo_sha256": logo_sha256}
    for kind, toggles in details.items():
        flat[f"time_detail.{kind}"] = toggles
    return flat


def save(session: Session, tenant_id: uuid.UUID | str, branding: Branding, *, page_size: str, actor: Actor,
         logo: Logo | None = None, remove_logo: bool = False, user_id: uuid.UUID | None = None,
         origin: Origin | None = None) -> StoredBranding:
    """Store ``branding`` (and a new logo, or none); one audit row with only what changed. No change, no row."""
    tid = uuid.UUID(str(tenant_id))
    row = session.get(BrandingSettings, tid)
    previous = load(session, tid)
    if row is None:
        row = BrandingSettings(tenant_id=tid, settings={}, version=0)
        session.add(row)
    if logo is not None:
        row.logo, row.logo_mime, row.logo_sha256 = logo.data, logo.mime, logo.sha256
    elif remove_logo:
        row.logo, row.logo_mime, row.logo_sha256 = None, None, None
    row.settings = {**branding_to_dict(branding), "page_size": page_size}
    before = _audit_view(previous.branding, previous.page_size, previous.logo_sha256)
    after = _audit_view(branding, page_size, row.logo_sha256)
    b, a = changes(before, after)
    if a or previous.version == 0:
        row.version = (row.version or 0) + 1
        row.updated_by = user_id
        session.flush()
        record(session, tid, actor, "branding.saved", target_type="branding", target_id=tid,
               before=b or None, after=a or {"saved": True}, origin=origin)
    return load(session, tid)
