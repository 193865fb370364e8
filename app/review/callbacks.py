"""Registering and removing the tenant's ConnectWise callbacks (invoices, time, expenses; level owner, objectId 1).

Each registration makes a new random token for the callback URL (``/hooks/connectwise/<token>?recordId=``); only
its SHA-256 is stored, so the URL names the tenant without revealing its id and a database copy cannot forge it.
The ids ConnectWise gives the callbacks are stored with the site and company they were registered on, and the keys
that registered them (``app.review.callback_state``), so they are removed from the same place with the same keys
even after the connection has moved or its keys changed. Both ends record where things stand (registered, failed
and why, off) for the settings page. ``app.review.callback_jobs`` decides when to call these.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.audit.log import Actor, record
from app.connectwise import errors as cw_errors
from app.connectwise.client import Client, Credentials
from app.connectwise.connection import client_for, credentials, get_connection
from app.connectwise.tenant_client import tenant_client
from app.review.callback_state import (
    CallbackState,
    note_left_behind,
    set_status,
    state_of,
    store_keys,
    stored_keys,
)
from app.review.models import CallbackRegistration
from app.review.settings import settings_of
from app.services import Services
from app.tenancy import tenant_session

log = logging.getLogger(__name__)
# API-NOTES §9 documents Invoice, Time and Expense callbacks (each with an Owner level, objectId 1). It has no type
# for the product lines on invoices (ProductItem): its ProductCatalog type covers catalog items, whose payload names
# no invoice, so "product" was a guess that ConnectWise does not know. Product-line changes reach review through the
# incremental sweep's products poll instead.
TYPES = ("invoice", "time", "expense")
HOOK_PREFIX = "/hooks/connectwise/"
DESCRIPTION = "Better Invoice review: rescan on change"
PERMISSION = "System › Callbacks"
STORAGE_OFF = "Review storage is turned off for this workspace; callbacks stay off."
NOT_CONNECTED = "ConnectWise is not connected."


class CallbackError(Exception):
    """Callbacks could not be registered; the message is for the person who asked."""


@dataclass
class Removal:
    removed: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)  # ids we could not delete (ConnectWise down, or keys gone)
    reason: str = ""  # why some were left


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


def refusal(exc: cw_errors.ConnectWiseError) -> str:
    """Why ConnectWise did not register the callbacks, in words a person can act on."""
    if isinstance(exc, cw_errors.PermissionMissing):
        return (f"ConnectWise refused to register callbacks: missing permission {PERMISSION} (add it to the API "
                "member's security role, then register again)")
    if isinstance(exc, cw_errors.AuthRefused):
        return f"ConnectWise refused to register callbacks: {exc}"
    return f"ConnectWise did not register the callbacks: {exc}"


def _current(services: Services, tenant_id: str, options: Mapping[str, Any] | None) -> tuple[Client, Credentials]:
    """A job client on the connection as it is now, and its credentials."""
    with tenant_session(tenant_id, services.session_factory) as session:
        conn = get_connection(session)
        if conn is None:
            raise CallbackError(NOT_CONNECTED)
        creds = credentials(conn, services.keyring)
        client = tenant_client(session, services.keyring, services.config, services.redis, for_page=False,
                               **dict(options or {}))
        return client, creds


def _record_failure(services: Services, tenant_id: str, reason: str) -> None:
    with tenant_session(tenant_id, services.session_factory) as session:
        set_status(session, tenant_id, "failed", reason)


def enable_callbacks(services: Services, tenant_id: str, base_url: str, actor: Actor, *,
                     client_options: Mapping[str, Any] | None = None) -> list[int]:
    """Register the callbacks (replacing any registered before, under a new token); returns their ids. A refusal
    is recorded as the failure the settings page shows, then raised as CallbackError."""
    with tenant_session(tenant_id, services.session_factory) as session:
        if not settings_of(session, tenant_id).storage_enabled:
            set_status(session, tenant_id, "off", STORAGE_OFF)
            raise CallbackError(STORAGE_OFF)
    if registration(services, tenant_id) is not None:
        disable_callbacks(services, tenant_id, actor, client_options=client_options, final=False)
    token = secrets.token_urlsafe(32)
    try:
        client, creds = _current(services, tenant_id, client_options)
    except CallbackError as exc:
        _record_failure(services, tenant_id, str(exc))
        raise
    except cw_errors.ConnectWiseError as exc:
        _record_failure(services, tenant_id, refusal(exc))
        raise CallbackError(refusal(exc)) from exc
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
            _record_failure(services, tenant_id, refusal(exc))
            raise CallbackError(refusal(exc)) from exc
    tid = uuid.UUID(str(tenant_id))
    with tenant_session(tenant_id, services.session_factory) as session:
        session.add(CallbackRegistration(tenant_id=tid, token_hash=hash_token(token), site=creds.site,
                                         company_id=creds.company_id, callback_ids=ids))
        state = set_status(session, tenant_id, "registered")
        state.types, state.registered_at = list(TYPES), dt.datetime.now(dt.UTC)
        store_keys(services.keyring, state, creds)
        record(session, tid, actor, "review.callbacks_registered", target_type="review_callbacks", target_id=tid,
               after={"callback_ids": ids, "types": list(TYPES), "site": creds.site})
    return ids


def _delete(client: Client, ids: list[int]) -> Removal:
    done = Removal()
    for callback_id in ids:
        try:
            client.delete(f"system/callbacks/{int(callback_id)}")
            done.removed.append(callback_id)
        except cw_errors.NotFound:
            done.removed.append(callback_id)  # already gone is what we wanted
        except cw_errors.ConnectWiseError as exc:
            done.left.append(callback_id)
            done.reason = str(exc)
    return done


def _clients(services: Services, tenant_id: str, row: CallbackRegistration,
             options: Mapping[str, Any] | None) -> list[Client]:
    """Who may delete the callbacks: the keys that registered them, then, on the same site and company, the
    connection's keys now (keys rotated in ConnectWise may have revoked the old ones)."""
    found: list[Client] = []
    with tenant_session(tenant_id, services.session_factory) as session:
        old = stored_keys(services.keyring, state_of(session, tenant_id))
        conn = get_connection(session)
        now = credentials(conn, services.keyring) if conn is not None else None
        candidates = [c for c in (old, now) if c is not None and (c.site, c.company_id) == (row.site, row.company_id)]
        for creds in dict.fromkeys(candidates):  # the same keys once
            try:
                found.append(client_for(session, creds, tenant_id, services.config, services.redis, for_job=True,
                                        resolver=services.connectwise_resolver, **dict(options or {})))
            except cw_errors.ConnectWiseError:
                continue  # e.g. the owner removed that on-premises host: nothing may reach it now
    return found


def disable_callbacks(services: Services, tenant_id: str, actor: Actor, *,
                      client_options: Mapping[str, Any] | None = None, final: bool = True) -> Removal:
    """Delete the tenant's callbacks in ConnectWise (best effort, with the keys that registered them) and forget
    their token and keys. The token is forgotten even when ConnectWise cannot be reached: their deliveries are
    then refused as unknown, and what is left is recorded. ``final`` False: a registration follows at once."""
    row = registration(services, tenant_id)
    if row is None:
        if final:
            with tenant_session(tenant_id, services.session_factory) as session:
                _off(session, tenant_id)
        return Removal()
    ids = [int(i) for i in row.callback_ids or []]
    done = Removal(left=list(ids), reason="the keys that registered them no longer reach that site")
    clients = _clients(services, tenant_id, row, client_options)
    try:
        for client in clients:
            if not done.left:
                break
            attempt = _delete(client, done.left)
            done.removed += attempt.removed
            done.left, done.reason = attempt.left, attempt.reason or done.reason
    finally:
        for client in clients:
            client.close()
    tid = uuid.UUID(str(tenant_id))
    with tenant_session(tenant_id, services.session_factory) as session:
        current = session.get(CallbackRegistration, tid)
        if current is not None:
            session.delete(current)
        state = _off(session, tenant_id) if final else set_status(session, tenant_id, "pending")
        store_keys(services.keyring, state, None)
        state.types = []
        if done.left:
            note_left_behind(state, row.site, row.company_id, done.left, done.reason)
        record(session, tid, actor, "review.callbacks_removed", target_type="review_callbacks", target_id=tid,
               after={"removed": done.removed, "left": done.left, "site": row.site})
    if done.left:
        log.warning("review callbacks left in ConnectWise: %d", len(done.left), extra={"event": "review.callbacks_left"})
    return done


def _off(session: Session, tenant_id: str) -> CallbackState:
    """Off, saying why when something other than a person's choice keeps it off."""
    storage = settings_of(session, tenant_id).storage_enabled
    connected = get_connection(session) is not None
    reason = STORAGE_OFF if not storage else (None if connected else NOT_CONNECTED)
    return set_status(session, tenant_id, "off", reason)
