"""Stripe's two session endpoints that localstripe lacks, at the HTTP boundary: an HTTP server on 127.0.0.1 that
answers exactly ``POST /v1/checkout/sessions`` and ``POST /v1/billing_portal/sessions`` with Stripe's documented
shapes and forwards every other request, unchanged, to localstripe. Point ``STRIPE_API_BASE`` at ``fake.url``.

It also plays Stripe's hosted pages: ``GET /c/pay/<id>`` is the owner paying (what ``complete(id)`` does from a
test), ``GET /c/pay/<id>?cancel=1`` the owner going back, ``GET /p/session/<id>`` the portal (straight back to its
return URL). Paying does at localstripe, through the official SDK, what Checkout does at Stripe: a card on the
customer (localstripe's ``pm_card_visa``), a subscription (localstripe knows legacy plans only, so a plan whose id is
the configured price id is created first) and the session marked complete; then the signed events Stripe sends,
``customer.subscription.created`` and ``checkout.session.completed``, go to the app's webhook through ``deliver``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import stripe

# (payload, Stripe-Signature header) -> the webhook's HTTP status
Deliver = Callable[[bytes, str], int]


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Stripe's ``Stripe-Signature`` scheme: ``t=<ts>,v1=<HMAC-SHA256(secret, "<ts>.<payload>")>``."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def http_deliver(webhook_url: str, secret: str) -> Deliver:
    """Delivery to a running app (the browser test's live server)."""

    def deliver(payload: bytes, signature: str) -> int:
        return requests.post(webhook_url, data=payload, timeout=30, headers={
            "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature}).status_code

    return deliver


def _unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form fields as the SDK encodes them (``line_items[0][price]=...``) back into dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for part, nxt in zip(parts, parts[1:] + [None], strict=True):
            if nxt is None:
                node[part] = value
            else:
                node = node.setdefault(part, {})

    def lists(value: Any) -> Any:
        if isinstance(value, dict):
            if value and all(k.isdigit() for k in value):
                return [lists(value[k]) for k in sorted(value, key=int)]
            return {k: lists(v) for k, v in value.items()}
        return value

    return lists(root)


@dataclass
class Price:
    """A price the fake account sells (Checkout checks line items against these, as Stripe checks its prices)."""

    id: str
    interval: str
    amount: int = 4900
    currency: str = "usd"


@dataclass
class SessionsFake:
    """The running server. ``checkouts`` and ``portals`` hold the sessions made, by id; while ``failing`` is set,
    session requests answer with that HTTP status and Stripe's error shape (the SDK retries, so it stays until
    cleared); ``delivered`` lists (event type, webhook status); ``requests`` every (method, path) received."""

    localstripe_url: str
    secret_key: str
    prices: dict[str, Price]
    webhook_secret: str = ""
    deliver: Deliver | None = None
    checkouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    portals: dict[str, dict[str, Any]] = field(default_factory=dict)
    failing: int | None = None
    delivered: list[tuple[str, int]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sdk(self) -> stripe.StripeClient:
        """The official SDK on localstripe itself (what 'Stripe' does behind its hosted pages)."""
        return stripe.StripeClient(self.secret_key, base_addresses={"api": self.localstripe_url})

    # --- the two endpoints ---------------------------------------------------------------------------------------

    def create_checkout(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if params.get("mode") != "subscription":
            return _error(400, "This fake only makes subscription Checkout sessions.", "mode")
        if not params.get("success_url"):
            return _error(400, "Missing required param: success_url.", "success_url")
        items = params.get("line_items") or []
        if len(items) != 1 or items[0].get("price") not in self.prices:
            price = items[0].get("price") if items else ""
            return _error(400, f"No such price: '{price}'", "line_items[0][price]", "resource_missing")
        customer = params.get("customer", "")
        if not self._customer_exists(customer):
            return _error(400, f"No such customer: '{customer}'", "customer", "resource_missing")
        sid = "cs_test_" + secrets.token_hex(12)
        now = int(time.time())
        session = {
            "id": sid, "object": "checkout.session", "mode": "subscription", "status": "open",
            "payment_status": "unpaid", "url": f"{self.url}/c/pay/{sid}", "customer": customer,
            "client_reference_id": params.get("client_reference_id"), "metadata": params.get("metadata") or {},
            "success_url": params["success_url"], "cancel_url": params.get("cancel_url"), "subscription": None,
            "livemode": False, "created": now, "expires_at": now + 86400, "currency": self.prices[
                items[0]["price"]].currency, "amount_total": self.prices[items[0]["price"]].amount,
            "_price": items[0]["price"], "_subscription_data": params.get("subscription_data") or {}}
        with self._lock:
            self.checkouts[sid] = session
        return 200, _public(session)

    def create_portal(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        customer = params.get("customer", "")
        if not self._customer_exists(customer):
            return _error(400, f"No such customer: '{customer}'", "customer", "resource_missing")
        pid = "bps_" + secrets.token_hex(12)
        session = {"id": pid, "object": "billing_portal.session", "customer": customer,
                   "return_url": params.get("return_url"), "url": f"{self.url}/p/session/{pid}",
                   "configuration": "bpc_fake_default", "created": int(time.time()), "livemode": False,
                   "flow": None, "locale": None, "on_behalf_of": None}
        with self._lock:
            self.portals[pid] = session
        return 200, session

    def _customer_exists(self, customer: str) -> bool:
        if not customer:
            return False
        try:
            self.sdk().v1.customers.retrieve(customer)
        except stripe.InvalidRequestError:
            return False
        return True

    # --- the owner paying --------------------------------------------------------------------------------------

    def complete(self, session_id: str) -> dict[str, Any]:
        """The owner pays: subscription made at localstripe, session complete, events delivered. The session."""
        session = self.checkouts[session_id]
        price = self.prices[session["_price"]]
        sdk = self.sdk()
        try:
            sdk.v1.plans.retrieve(price.id)
        except stripe.InvalidRequestError:
            sdk.v1.plans.create(params={"id": price.id, "amount": price.amount, "currency": price.currency,
                                        "interval": price.interval, "product": {"name": "Better Invoice Pro"}})
        card = sdk.v1.payment_methods.attach("pm_card_visa", params={"customer": session["customer"]})
        sdk.v1.customers.update(session["customer"],
                                params={"invoice_settings": {"default_payment_method": card.id}})
        subscription = sdk.v1.subscriptions.create(params={  # type: ignore[typeddict-item]
            "customer": session["customer"], "items": [{"plan": price.id}],
            "metadata": session["_subscription_data"].get("metadata") or {}})
        session.update(status="complete", payment_status="paid", subscription=subscription.id)
        self.send_event("customer.subscription.created", subscription.to_dict())
        self.send_event("checkout.session.completed", _public(session))
        return session

    def send_event(self, event_type: str, obj: dict[str, Any]) -> int:
        """One signed event to the app's webhook, shaped as Stripe's; the webhook's status (0 without a deliver)."""
        if self.deliver is None:
            return 0
        event = {"id": "evt_" + secrets.token_hex(12), "object": "event", "api_version": stripe.api_version,
                 "created": int(time.time()), "type": event_type, "data": {"object": obj}, "livemode": False,
                 "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}}
        payload = json.dumps(event).encode()
        status = self.deliver(payload, signature_header(payload, self.webhook_secret))
        self.delivered.append((event_type, status))
        return status

    def session_of_url(self, url: str) -> str:
        """The Checkout session id in one of the fake's checkout URLs."""
        return urlsplit(url).path.rsplit("/", 1)[-1]


def _public(session: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith("_")}


def _error(status: int, message: str, param: str, code: str | None = None) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": "invalid_request_error", "message": message, "param": param, "code": code}}


def _handler(fake: SessionsFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: bytes, content_type: str = "application/json",
                    headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _redirect(self, location: str) -> None:
            self._answer(303, b"", "text/plain", {"Location": location})

        def _authorised(self) -> bool:
            return self.headers.get("Authorization", "") == f"Bearer {fake.secret_key}"

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            path = urlsplit(self.path).path
            fake.requests.append(("POST", path))
            if path not in ("/v1/checkout/sessions", "/v1/billing_portal/sessions"):
                return self._forward(body)
            if not self._authorised():
                status, answer = _error(401, "Invalid API Key provided.", "")
                answer["error"]["type"] = "invalid_request_error"
            elif fake.failing is not None:
                status, answer = fake.failing, {"error": {"type": "api_error", "message": "Something went wrong."}}
            else:
                params = _unflatten(parse_qsl(body.decode(), keep_blank_values=True))
                make = fake.create_checkout if path == "/v1/checkout/sessions" else fake.create_portal
                status, answer = make(params)
            self._answer(status, json.dumps(answer).encode(), headers={"Request-Id": "req_" + secrets.token_hex(6)})

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            fake.requests.append(("GET", parts.path))
            pay = re.fullmatch(r"/c/pay/(cs_test_\w+)", parts.path)
            portal = re.fullmatch(r"/p/session/(bps_\w+)", parts.path)
            if pay and pay.group(1) in fake.checkouts:
                session = fake.checkouts[pay.group(1)]
                if "cancel=1" in parts.query:
                    return self._redirect(session["cancel_url"])
                if session["status"] == "open":
                    fake.complete(session["id"])
                return self._redirect(session["success_url"])
            if portal and portal.group(1) in fake.portals:
                return self._redirect(fake.portals[portal.group(1)]["return_url"])
            if parts.path.startswith(("/c/", "/p/")):
                return self._answer(404, b"Not found", "text/plain")
            self._forward(b"")

        def do_DELETE(self) -> None:  # noqa: N802
            fake.requests.append(("DELETE", urlsplit(self.path).path))
            self._forward(b"")

        def _forward(self, body: bytes) -> None:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() in ("authorization", "content-type", "stripe-version", "idempotency-key",
                                        "user-agent", "x-stripe-client-user-agent")}
            answer = requests.request(self.command, fake.localstripe_url + self.path, data=body or None,
                                      headers=headers, timeout=30)
            self._answer(answer.status_code, answer.content, answer.headers.get("Content-Type", "application/json"))

        def log_message(self, *args: object) -> None:
            pass

    return Handler
