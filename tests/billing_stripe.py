"""The Stripe harness for billing tests: localstripe (PyPI) served on 127.0.0.1 in this process, the app's Stripe
settings pointed at it, and Stripe's own webhook signature scheme for signing payloads.

localstripe's CLI binds every interface and pickles its store to a fixed path in /tmp after each write; here its
aiohttp app is served on a loopback socket of our own and the dump is switched off, so nothing leaves the process.
localstripe's store and webhook list are module globals: one server per test session, ids are random, so tests
do not see each other's customers. Drive it only through the official SDK (``app.billing.gateway.stripe_client``).

Loaded for every test by ``tests/conftest.py`` (``pytest_plugins``): ask for ``stripe_settings`` (or ``localstripe``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

SECRET_KEY = "sk_test_localstripe_" + "k" * 16  # localstripe accepts any key that starts with sk_
WEBHOOK_SECRET = "whsec_test_" + "w" * 24
PRICE_MONTHLY = "price_bi_pro_monthly"  # localstripe has no prices: plans with these ids stand in for them
PRICE_YEARLY = "price_bi_pro_yearly"


def sign_payload(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | float | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload``, as Stripe signs it: ``t=<ts>,v1=<hex HMAC-SHA256 of
    "<ts>.<payload>">``."""
    at = int(time.time() if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), b"%d." % at + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


class _Server:
    """localstripe's aiohttp app on its own event loop in a daemon thread."""

    def __init__(self) -> None:
        from localstripe import resources

        resources.store.dump_to_disk = lambda: None  # type: ignore[method-assign]  # no pickle in /tmp
        self.loop = asyncio.new_event_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="localstripe", daemon=True)

    def _run(self) -> None:
        from aiohttp import web
        from localstripe.server import app

        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.SockSite(self.runner, self.sock).start())
        self._ready.set()
        self.loop.run_forever()
        pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]  # webhooks still queued
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("localstripe did not start")

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    """localstripe's base URL (``http://127.0.0.1:<port>``), for ``STRIPE_API_BASE``."""
    server = _Server()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@dataclass(frozen=True)
class StripeSettings:
    url: str
    secret_key: str
    webhook_secret: str
    price_monthly: str
    price_yearly: str


_plans_made: set[str] = set()


def _ensure_plans(url: str) -> None:
    """Pro's monthly and yearly plans in localstripe (once per server), with the configured price ids as ids."""
    import stripe

    if url in _plans_made:
        return
    client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": url})
    for price, interval, amount in ((PRICE_MONTHLY, "month", 2900), (PRICE_YEARLY, "year", 29000)):
        try:
            client.v1.plans.retrieve(price)
        except stripe.InvalidRequestError:
            client.v1.plans.create(params={"id": price, "amount": amount, "currency": "usd", "interval": interval,
                                           "product": {"name": f"Better Invoice Pro ({interval}ly)"}})
    _plans_made.add(url)


@pytest.fixture()
def stripe_settings(app, localstripe, monkeypatch) -> StripeSettings:  # type: ignore[no-untyped-def]
    """The app's Stripe settings pointed at localstripe (key, webhook secret, the two price ids), plans made."""
    from app.services import services_of

    cfg = services_of(app).config
    for name, value in (("STRIPE_SECRET_KEY", SECRET_KEY), ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
                        ("STRIPE_PRICE_PRO_MONTHLY", PRICE_MONTHLY), ("STRIPE_PRICE_PRO_YEARLY", PRICE_YEARLY),
                        ("STRIPE_API_BASE", localstripe)):
        monkeypatch.setattr(cfg, name, value)
    _ensure_plans(localstripe)
    return StripeSettings(localstripe, SECRET_KEY, WEBHOOK_SECRET, PRICE_MONTHLY, PRICE_YEARLY)


def register_webhook(settings: StripeSettings, url: str, *, hook_id: str = "bi-test",
                     events: tuple[str, ...] | None = None) -> None:
    """Ask localstripe to POST its signed events to ``url`` (its ``/_config/webhooks`` endpoint: not Stripe's
    API, so plain HTTP rather than the SDK)."""
    import requests

    data: dict[str, str | list[str]] = {"url": url, "secret": settings.webhook_secret}
    if events is not None:
        data["events"] = list(events)
    response = requests.post(f"{settings.url}/_config/webhooks/{hook_id}", json=data,
                             headers={"Authorization": f"Bearer {settings.secret_key}"}, timeout=5)
    response.raise_for_status()


def unregister_webhook(hook_id: str = "bi-test") -> None:
    """Stop delivering to a registered webhook (localstripe has no endpoint for this)."""
    from localstripe import webhooks

    webhooks._webhooks.pop(hook_id, None)
