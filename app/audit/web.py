"""Who did an audited action and where it came from, read off the current request (views call these; services
take an Actor and an Origin), and the audit row a request commits on its own."""

from __future__ import annotations

import uuid

from flask import g, request
from flask_login import current_user

from app.audit.log import Actor, Origin, record
from app.services import current_services
from app.tenancy import tenant_session


def request_origin() -> Origin:
    return Origin(request.remote_addr, request.headers.get("User-Agent", "")[:500] or None, g.get("request_id"))


def current_actor() -> Actor:
    """The signed-in person as an audit actor: a user, or support staff through their grant."""
    return getattr(current_user, "audit_actor", None) or Actor.user(current_user.id, current_user.email)


def current_user_row_id() -> uuid.UUID | None:
    """The signed-in person's row in ``users`` (for "updated by" columns); None for support staff, who have none."""
    return None if getattr(current_user, "audit_actor", None) else current_user.id


def audit_outside_request(tenant_id: uuid.UUID, actor: Actor, action: str, **details: object) -> None:
    """An audit row committed on its own, so it stays even when the request answers with an error."""
    with tenant_session(tenant_id, current_services().session_factory) as s:
        record(s, tenant_id, actor, action, origin=request_origin(), **details)  # type: ignore[arg-type]
