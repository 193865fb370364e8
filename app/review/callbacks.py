"""Registering and removing the tenant's ConnectWise callbacks (invoices, time, products; level owner, objectId 1).

Each registration makes a new random token for the callback URL (``/hooks/connectwise/<token>?recordId=``); only
its SHA-256 is stored, so the URL names the tenant without revealing its id and a database copy cannot forge it.
The ids ConnectWise gives the callbacks are stored with the site and company they were registered on, so they are
removed from the same place: when review storage is turned off, on request, or before the connection moves.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.audit.log import Actor, record
from app.connectwise import errors as cw_errors
from app.connectwise.client import Client
from app.connectwise.connection import get_connection
from app.connectwise.tenant_client import tenant_client
from app.review.models import CallbackRegistration
from app.review.settings import settings_of
from app.services import Services
from app.tenancy import tenant_session

log = logging.getLogger(__name__)
TYPES = ("invoice", "time", "product")
HOOK_PREFIX = "/hooks/connectwise/"
DESCRIPTION = "Better Invoice review: rescan on change"


class CallbackError(Exception):
    """Callbacks could not be registered; the message is for the person who asked."""


@dataclass
class Removal:
    removed: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)  # ids we could not delete (ConnectWise down, or it moved)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def hook_url(base_url: str, token: str) -> str:
    """The URL ConnectWise calls; it appends the record id to it."""
    return f"{base_url.rstrip('/')}{HOOK_PREFIX}{token}?recordId="


def registration(services: Services, tenant_id: str) -> CallbackRegistration | None:
    with tenant_session(tenant_id, services.session_factory) as session:
        row = session.get(CallbackRegistration, uuid.UUID(str(tenant_id)))
        if row is not None:
            session.expunge(row)
        return row


def _client(services: Services, tenant_id: str, options: Mapping[str, Any] | None) -> tuple[Client, str, str]:
    with tenant_session(tenant_id, services.session_factory) as session:
        conn = get_connection(session)
        if conn is None:
            raise CallbackError("ConnectWise is not connected.")
        client = tenant_client(session, services.keyring, services.config, services.redis, for_page=False,
                               **dict(options or {}))
        return client, conn.site, conn.company_id


def enable_callbacks(services: Services, tenant_id: str, base_url: str, actor: Actor, *,
                     client_options: Mapping[str, Any] | None = None) -> list[int]:
    """Register the three callbacks (replacing any registered before, under a new token); returns their ids."""
    with tenant_session(tenant_id, services.session_factory) as session:
        if not settings_of(session, tenant_id).storage_enabled:
            raise CallbackError("Review storage is turned off for this workspace; callbacks stay off.")
    if registration(services, tenant_id) is not None:
        disable_callbacks(services, tenant_id, actor, client_options=client_options)
    token = secrets.token_urlsafe(32)
    client, site, company_id = _client(services, tenant_id, client_options)
    ids: list[int] = []
    with client:
        try:
            for kind in TYPES:
                created = client.post("system/callbacks", {
                    "description": DESCRIPTION, "url": hook_url(base_url, token), "objectId": 1, "type": kind,
                    "level": "owner", "inactiveFlag": False, "payloadVersion": "3.0.0",
                    "isSelfSuppressedFlag": False})
                callback_id = created.get("id") if isinstance(created, dict) else None
                if isinstance(callback_id, bool) or not isinstance(callback_id, int):
                    raise cw_errors.MalformedResponse("ConnectWise created a callback without an id")
                ids.append(callback_id)
        except cw_errors.ConnectWiseError as exc:
            _delete(client, ids)  # none half-registered: the ones made are taken back
            raise CallbackError(f"ConnectWise did not register the callbacks: {exc}") from exc
    tid = uuid.UUID(str(tenant_id))
    with tenant_session(tenant_id, services.session_factory) as session:
        session.add(CallbackRegistration(tenant_id=tid, token_hash=hash_token(token), site=site,
                                         company_id=company_id, callback_ids=ids))
        record(session, tid, actor, "review.callbacks_registered", target_type="review_callbacks", target_id=tid,
               after={"callback_ids": ids, "types": list(TYPES), "site": site})
    return ids


def _delete(client: Client, ids: list[int]) -> Removal:
    done = Removal()
    for callback_id in ids:
        try:
            client.delete(f"system/callbacks/{int(callback_id)}")
            done.removed.append(callback_id)
        except cw_errors.NotFound:
            done.removed.append(callback_id)  # already gone is what we wanted
        except cw_errors.ConnectWiseError:
            done.left.append(callback_id)
    return done


def disable_callbacks(services: Services, tenant_id: str, actor: Actor, *,
                      client_options: Mapping[str, Any] | None = None) -> Removal:
    """Delete the tenant's callbacks in ConnectWise and forget their token. The token is forgotten even when
    ConnectWise cannot be reached (or the connection moved): their deliveries are then refused as unknown."""
    row = registration(services, tenant_id)
    if row is None:
        return Removal()
    ids = [int(i) for i in row.callback_ids or []]
    done = Removal(left=list(ids))
    try:
        client, site, company_id = _client(services, tenant_id, client_options)
    except (CallbackError, cw_errors.ConnectWiseError):
        client = None
    if client is not None:
        with client:
            if (site, company_id) == (row.site, row.company_id):
                done = _delete(client, ids)
    tid = uuid.UUID(str(tenant_id))
    with tenant_session(tenant_id, services.session_factory) as session:
        current = session.get(CallbackRegistration, tid)
        if current is not None:
            session.delete(current)
        record(session, tid, actor, "review.callbacks_removed", target_type="review_callbacks", target_id=tid,
               after={"removed": done.removed, "left": done.left})
    if done.left:
        log.warning("review callbacks left in ConnectWise: %d", len(done.left), extra={"event": "review.callbacks_left"})
    return done
