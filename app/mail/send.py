"""Sending mail. Mailgun in production (the official ``mailgun`` SDK, base URL configurable so tests point it at a
local endpoint); in development and tests an outbox in Redis that a dev-only page shows. Message bodies are never
logged: they carry sign-in codes."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass

from redis import Redis

from app.config import Config
from app.services import Services

log = logging.getLogger(__name__)
OUTBOX_KEY = "bi:dev-outbox"
OUTBOX_KEEP = 50


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str
    html: str


class MailError(RuntimeError):
    """The mail provider refused or could not be reached; the message says which, never the content."""


def send(services: Services, message: Message) -> None:
    cfg = services.config
    if cfg.mail_backend == "mailgun":
        _send_mailgun(cfg, message)
    else:
        _send_outbox(cfg, services.redis, message)
    log.info("mail sent", extra={"event": "mail.sent", "backend": cfg.mail_backend})


def _send_mailgun(cfg: Config, message: Message) -> None:
    from mailgun.client import Client

    # The SDK's own logger would print request bodies on errors; they hold codes.
    logging.getLogger("mailgun").setLevel(logging.CRITICAL)
    data = {"from": cfg.MAIL_FROM, "to": message.to, "subject": message.subject, "text": message.text,
            "html": message.html, "o:tracking": "no"}
    try:
        with Client(auth=("api", cfg.MAILGUN_API_KEY), api_url=cfg.MAILGUN_API_URL, timeout=(5.0, 15.0)) as client:
            response = client.messages.create(data=data, domain=cfg.MAILGUN_DOMAIN)
    except Exception as exc:  # the SDK raises requests/httpx errors and its own; all mean "not sent"
        raise MailError(f"Mailgun could not be reached ({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise MailError(f"Mailgun refused the message (HTTP {response.status_code})")


def _send_outbox(cfg: Config, redis: Redis, message: Message) -> None:
    record = {**asdict(message), "sent_at": time.time()}
    pipe = redis.pipeline()
    pipe.lpush(OUTBOX_KEY, json.dumps(record))
    pipe.ltrim(OUTBOX_KEY, 0, OUTBOX_KEEP - 1)
    pipe.expire(OUTBOX_KEY, 86400)
    pipe.execute()
    if cfg.is_development:
        # Development only: the person running `make dev` reads the code here (never in other environments).
        print(f"\n[outbox] to {message.to}: {message.subject}\n{message.text}\n", file=sys.stderr, flush=True)


def outbox(redis: Redis, limit: int = OUTBOX_KEEP) -> list[dict]:
    """The newest messages in the development outbox."""
    return [json.loads(raw) for raw in redis.lrange(OUTBOX_KEY, 0, limit - 1)]
