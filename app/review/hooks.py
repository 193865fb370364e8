"""Receiving a ConnectWise callback: which tenant it is for, whether ConnectWise really sent it, and what to rescan.

The tenant comes from the token in the URL, through the one narrow database function
``bi_review_callback_tenant`` (token hash in, tenant id out). The body is trusted only once its
``x-content-signature`` matches: base64(HMAC-SHA256(key = SHA-256(signing_key), message = raw body)), with the
signing key fetched from the payload's ``Metadata.key_url`` only when that URL is on the tenant's own ConnectWise
site (through the tenant's client: vetted addresses, its deadline), and cached in Redis encrypted. A message is
accepted once (``MessageId``, SET NX with a TTL). A refusal changes nothing; nothing here logs a key, a token or
the body.

What is rescanned: the invoice itself (a deleted one too: the rescan finds it gone and drops its snapshot and
flags), or the invoice a time entry or expense is on. ConnectWise may send a deleted record without its ``Entity``
(API-NOTES §9), so a deleted line with no invoice in its payload queues a job that finds its invoice among the
stored snapshots.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from app.connectwise import errors as cw_errors
from app.connectwise.connection import get_connection
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.review import summary
from app.review.callback_jobs import LINE_COLLECTIONS, request_line_rescan
from app.review.callbacks import hash_token
from app.review.rescan import request_rescan
from app.review.settings import settings_of
from app.security.crypto import DecryptionError, FieldRef
from app.services import Services
from app.tenancy import no_tenant_session, tenant_session

log = logging.getLogger(__name__)
_LOOKUP = text("select bi_review_callback_tenant(:h)")
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
KEY_TTL_SECONDS = 3600
MESSAGE_TTL_SECONDS = 86400  # far beyond ConnectWise's retries (2 s, then 4 s)
KEY_TABLE = "callback_signing_keys"  # names the associated data of a cached key's ciphertext (no table)
LINE_TYPES = tuple(LINE_COLLECTIONS)  # the registered line types (app.review.callbacks.TYPES)


@dataclass(frozen=True)
class Outcome:
    """How a callback was answered: HTTP status, a plain message, and the invoice queued for a rescan (if any)."""

    status: int
    message: str
    invoice_id: int | None = None


def tenant_for_token(services: Services, token: str) -> str | None:
    """The tenant whose callback URL carries ``token``; None when unknown or malformed."""
    if not isinstance(token, str) or not _TOKEN_SHAPE.match(token):
        return None
    with no_tenant_session(services.session_factory) as session:
        found = session.execute(_LOOKUP, {"h": hash_token(token)}).scalar()
    return str(found) if found else None


def signature_of(signing_key: str, body: bytes) -> str:
    key = hashlib.sha256(signing_key.encode("utf-8")).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    metadata = payload.get("Metadata")
    key_url = metadata.get("key_url") if isinstance(metadata, dict) else None
    message_id, record_id = payload.get("MessageId"), payload.get("ID")
    if not (isinstance(key_url, str) and isinstance(message_id, str) and 0 < len(message_id) <= 100
            and isinstance(payload.get("Type"), str) and isinstance(record_id, int)
            and not isinstance(record_id, bool)):
        return None
    return payload


def receive(services: Services, token: str, body: bytes, signature: str | None) -> Outcome:
    """Verify one delivery and queue the rescan it asks for; every refusal is a 4xx (or 503) with a reason."""
    tenant_id = tenant_for_token(services, token)
    if tenant_id is None:
        return Outcome(404, "Unknown callback address.")
    payload = _parse(body)
    if payload is None:
        return Outcome(400, "The callback body is not the JSON ConnectWise sends.")
    if not signature:
        return Outcome(401, "The callback is not signed.")
    with tenant_session(tenant_id, services.session_factory) as session:
        conn = get_connection(session)
        if conn is None or not settings_of(session, tenant_id).storage_enabled:
            return Outcome(404, "This workspace takes no callbacks now.")
        if str(payload.get("CompanyId", "")).lower() != conn.company_id.lower():
            return Outcome(403, "The callback is for another ConnectWise company.")
        try:
            client = tenant_client(session, services.keyring, services.config, services.redis, for_page=True)
        except (NotConnected, cw_errors.ConnectWiseError):
            return Outcome(503, "ConnectWise cannot be reached to verify the callback; try again later.")
    key_url = payload["Metadata"]["key_url"]
    with client:
        if not client.is_site_url(key_url):
            return Outcome(403, "The callback's key address is not on this workspace's ConnectWise site.")
        try:
            signing_key = _signing_key(services, tenant_id, key_url, client)
        except cw_errors.InvalidSite:
            return Outcome(403, "The callback's key address is not one we may reach.")
        except (cw_errors.NotFound, cw_errors.BadRequest, cw_errors.AuthRefused, cw_errors.PermissionMissing,
                cw_errors.MalformedResponse):
            return Outcome(401, "The callback's signing key could not be obtained from ConnectWise.")
        except cw_errors.ConnectWiseError:
            return Outcome(503, "ConnectWise cannot be reached to verify the callback; try again later.")
    if not hmac.compare_digest(signature_of(signing_key, body).encode(), signature.strip().encode()):
        return Outcome(401, "The callback's signature does not match.")
    seen_key = f"bi:review:cbmsg:{tenant_id}:{hashlib.sha256(payload['MessageId'].encode()).hexdigest()[:32]}"
    if not services.redis.set(seen_key, b"1", nx=True, ex=MESSAGE_TTL_SECONDS):
        return Outcome(409, "This callback message was already received.")
    invoice_id = _invoice_of(payload)
    deleted_line = invoice_id is None and _is_deleted_line(payload)
    if invoice_id is None and not deleted_line:
        return Outcome(200, "Nothing to rescan.")
    try:
        if invoice_id is not None:
            with tenant_session(tenant_id, services.session_factory) as session:  # the review page's banner
                summary.note_cw_change(session, invoice_id, dt.datetime.now(dt.UTC))
            request_rescan(services, tenant_id, invoice_id)
        else:
            request_line_rescan(services, tenant_id, payload["Type"].lower(), payload["ID"])
    except Exception:
        services.redis.delete(seen_key)  # not acted on: ConnectWise's retry of this message must get through
        raise
    log.info("review callback queued a rescan", extra={"event": "review.callback_accepted"})
    return Outcome(202, "Rescan queued.", invoice_id)


def _is_deleted_line(payload: dict[str, Any]) -> bool:
    return (str(payload.get("Action", "")).lower() == "deleted" and payload["Type"].lower() in LINE_TYPES
            and payload["ID"] > 0)


def _invoice_of(payload: dict[str, Any]) -> int | None:
    """The invoice a callback is about: the record itself, or the invoice a time entry or expense is on."""
    kind = payload["Type"].lower()
    if kind == "invoice":
        return payload["ID"] if payload["ID"] > 0 else None
    if kind not in LINE_TYPES:
        return None
    try:
        entity = json.loads(payload.get("Entity") or "null")
    except (TypeError, ValueError):
        return None
    invoice = entity.get("invoice") if isinstance(entity, dict) else None
    invoice_id = invoice.get("id") if isinstance(invoice, dict) else None
    if isinstance(invoice_id, bool) or not isinstance(invoice_id, int) or invoice_id <= 0:
        return None
    return invoice_id


def _signing_key(services: Services, tenant_id: str, key_url: str, client: Any) -> str:
    """The key ``key_url`` serves, from the Redis cache (encrypted, bound to tenant and URL) or ConnectWise."""
    digest = hashlib.sha256(key_url.encode()).hexdigest()
    cache_key = f"bi:review:cbkey:{tenant_id}:{digest[:32]}"
    ref = FieldRef(tenant_id, KEY_TABLE, uuid.UUID(digest[:32]), "signing_key")
    cached = services.redis.get(cache_key)
    if isinstance(cached, bytes) and cached:
        try:
            return services.keyring.decrypt(cached, ref)
        except DecryptionError:
            pass  # e.g. written under a key since retired: fetch it again
    answer = client.get_from_site(key_url)
    key = answer.get("signing_key") if isinstance(answer, dict) else None
    if not isinstance(key, str) or not key:
        raise cw_errors.MalformedResponse("ConnectWise answered the key address without a signing key")
    services.redis.set(cache_key, services.keyring.encrypt(key, ref), ex=KEY_TTL_SECONDS)
    return key
