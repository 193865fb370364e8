"""Callback delivery, as ConnectWise does it: signed POSTs to registered callbacks when a record is saved or deleted.

Owns: which callback types and levels a registration may name (API-NOTES §9's table), which registered callbacks
match a change (type, level, objectId), the documented payload (``Entity`` as a JSON string, empty for a delete;
``Metadata.key_url``), the ``x-content-signature`` (base64 HMAC-SHA256 keyed with SHA-256 of the signing key), the
signing-key endpoint the ``key_url`` names, and delivery on a background thread with the documented 5 s timeout and
two retries (after 2 s, then 4 s) on 404/409/419/429. Every attempt lands in ``SimState.deliveries`` so tests can
wait for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

if TYPE_CHECKING:
    from cwsim.state import SimState

# Simulator table -> callback type (ConnectWise's names, lower-case as real requests send them). API-NOTES §9 lists
# no type for procurement product items (ProductCatalog is the catalog, which the simulator does not serve), so a
# change to a product line calls no callback, as on ConnectWise.
TYPES = {"invoices": "invoice", "timeEntries": "time", "expenseEntries": "expense"}
# API-NOTES §9: every documented type and its levels (case-insensitive in practice). The levels of the types the
# notes list as "likewise" come from the same documentation table.
LEVELS: dict[str, frozenset[str]] = {name: frozenset(levels.split()) for name, levels in {
    "invoice": "owner status company invoice",
    "ticket": "owner board project phase status ticket integratortag",
    "time": "owner company time",
    "expense": "owner chargetotype type class company expense",
    "company": "owner status type territory company integratortag",
    "contact": "owner type territory company contact",
    "agreement": "owner type company agreement",
    "project": "owner status board project",
    "member": "owner location securityrole member",
    "opportunity": "owner statusid company opportunity",
    "activity": "owner status type company activity",
    "configuration": "owner type status configuration",
    "productcatalog": "owner",
    "purchaseorder": "owner status vendor company purchaseorder",
    "schedule": "owner status type location member schedule",
}.items()}
RETRY_STATUSES = frozenset({404, 409, 419, 429})
TIMEOUT_SECONDS = 5.0
KEY_PATH = "system/callbackkey/index.rails"


@dataclass
class Delivery:
    """One callback message and what became of it (``attempts`` holds each answer's status, 0 for no answer)."""

    message_id: str
    callback_id: int
    url: str
    type: str
    action: str
    record_id: int
    body: bytes = field(repr=False)
    signature: str = ""
    attempts: list[int] = field(default_factory=list)
    done: bool = False

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["body"] = self.body.decode("utf-8")
        return out


def signature(signing_key: str, body: bytes) -> str:
    """``x-content-signature``: base64(HMAC-SHA256(key = SHA-256(signing_key), message = raw body))."""
    key = hashlib.sha256(signing_key.encode("utf-8")).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


def key_url(state: SimState, site_url: str) -> str:
    """Where a receiver fetches the signing key (modelled on the real ``/v2025_1//system/callbackkey/...``)."""
    company = quote(state.config.company_id, safe="")
    return f"{site_url.rstrip('/')}/{state.codebase}{KEY_PATH}?companyName={company}&id={state.callback_key_id}"


def key_answer(state: SimState, company: str, key_id: str) -> dict[str, str] | None:
    """The signing key for a matching company and key id, else None (answered 404)."""
    if company.lower() != state.config.company_id.lower() or key_id != state.callback_key_id:
        return None
    return {"signing_key": state.callback_signing_key}


def entry_error(body: dict) -> tuple[str, str] | None:
    """(field, message) when a registration names a type or level ConnectWise does not know, else None.

    The level's message is the documented one (API-NOTES §7); the type's, in the same style, is a guess."""
    kind, level = str(body.get("type", "")).lower(), str(body.get("level", "")).lower()
    if kind not in LEVELS:
        return "type", f"Unrecognized type {body.get('type')}"
    if level not in LEVELS[kind]:
        return "level", f"Unrecognized level for type {body.get('type')}"
    return None


def _matches(callback: dict, kind: str, record: dict) -> bool:
    if callback.get("inactiveFlag") or str(callback.get("type", "")).lower() != kind:
        return False
    level, object_id = str(callback.get("level", "")).lower(), callback.get("objectId")
    if level == "owner":
        return object_id == 1
    if level == "company":
        return object_id == (record.get("company") or {}).get("id")
    return level == kind and object_id == record.get("id")


def notify(state: SimState, table: str, record: dict, action: str, rendered: dict, site_url: str) -> list[Delivery]:
    """Queue a signed delivery to each callback matching this change of ``record`` (``rendered``: its wire JSON;
    ``action``: "added", "updated" or "deleted", whose ``Entity`` is empty)."""
    kind = TYPES.get(table)
    if kind is None:
        return []
    with state.lock:
        callbacks = [c for c in state.data["callbacks"].iter() if _matches(c, kind, record)]
    made = []
    for callback in callbacks:
        payload = {
            "MessageId": str(uuid.uuid4()),
            "FromUrl": site_url.split("://", 1)[-1],
            "CompanyId": state.config.company_id,
            "MemberId": "bettersim_api",
            "Action": action,
            "Type": kind,
            "ID": record["id"],
            "ProductInstanceId": "5f0c0000-0000-4000-8000-000000000001",
            "PartnerId": state.config.company_id,
            "Entity": json.dumps(rendered, separators=(",", ":")) if action != "deleted" else "",
            "Metadata": {"key_url": key_url(state, site_url)},
            "CallbackObjectRecId": callback["id"],
        }
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        delivery = Delivery(payload["MessageId"], callback["id"], f"{callback['url']}{record['id']}", kind, action,
                            record["id"], body, signature(state.callback_signing_key, body))
        with state.lock:
            state.deliveries.append(delivery)
        made.append(delivery)
        threading.Thread(target=_deliver, args=(state, delivery), name="cwsim-callback", daemon=True).start()
    return made


def _deliver(state: SimState, delivery: Delivery) -> None:
    """POST once, and again after each of ``state.callback_retry_delays`` while the answer is retryable."""
    headers = {"Content-Type": "application/json", "x-content-signature": delivery.signature}
    for delay in (0.0, *state.callback_retry_delays):
        if delay:
            time.sleep(delay)
        try:
            status = httpx.post(delivery.url, content=delivery.body, headers=headers, timeout=TIMEOUT_SECONDS).status_code
        except httpx.HTTPError:
            status = 0
        with state.lock:
            delivery.attempts.append(status)
        if status not in RETRY_STATUSES:
            break
    with state.lock:
        delivery.done = True


def wait_for(state: SimState, count: int, timeout: float = 10.0) -> list[Delivery]:
    """Block until ``count`` deliveries have finished (all attempts made), or ``timeout`` passes; returns them."""
    end = time.monotonic() + timeout
    while True:
        with state.lock:
            finished = [d for d in state.deliveries if d.done]
        if len(finished) >= count or time.monotonic() >= end:
            return finished
        time.sleep(0.02)
