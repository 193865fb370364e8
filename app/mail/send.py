"""Sending mail. Mailgun in production (the official ``mailgun`` SDK, base URL configurable so tests point it at a
local endpoint); in development and tests an outbox in Redis that a dev-only page shows. Message bodies are never
logged: they carry sign-in codes."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from dataclasses import dataclass, field

from redis import Redis

from app.config import Config
from app.services import Services

log = logging.getLogger(__name__)
OUTBOX_KEY = "bi:dev-outbox"
OUTBOX_KEEP = 50


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Message:
    """One email. ``to`` may hold several addresses separated by commas. ``from_name`` and ``reply_to`` are the
    workspace's (the address itself is always ours, ``MAIL_FROM``); ``variables`` travel with the message and come
    back on Mailgun's delivery events (``v:`` custom variables), so an event can be matched to what we sent."""

    to: str
    subject: str
    text: str
    html: str
    cc: tuple[str, ...] = ()
    from_name: str = ""
    reply_to: str = ""
    attachments: tuple[Attachment, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)


class MailError(RuntimeError):
    """The mail provider refused or could not be reached; the message says which, never the content."""


def send(services: Services, message: Message) -> str | None:
    """Send one message; returns the provider's message id (Mailgun's ``id``; the outbox makes one up)."""
    cfg = services.config
    if cfg.mail_backend == "mailgun":
        message_id = _send_mailgun(cfg, message)
    else:
        message_id = _send_outbox(cfg, services.redis, message)
    log.info("mail sent", extra={"event": "mail.sent", "backend": cfg.mail_backend})
    return message_id


def sender_address(cfg: Config, from_name: str) -> str:
    """``MAIL_FROM`` with the workspace's sending name in place of ours (quotes and angle brackets dropped)."""
    if not from_name:
        return cfg.MAIL_FROM
    address = cfg.MAIL_FROM.rsplit("<", 1)[-1].rstrip(">").strip()
    name = "".join(ch for ch in from_name if ch not in '"<>\\\r\n').strip()
    return f'"{name}" <{address}>' if name else cfg.MAIL_FROM


def _send_mailgun(cfg: Config, message: Message) -> str | None:
    from mailgun.client import Client

    # The SDK's own logger would print request bodies on errors; they hold codes.
    logging.getLogger("mailgun").setLevel(logging.CRITICAL)
    data: dict[str, str] = {"from": sender_address(cfg, message.from_name), "to": message.to,
                            "subject": message.subject, "text": message.text, "html": message.html,
                            "o:tracking": "no"}
    if message.cc:
        data["cc"] = ", ".join(message.cc)
    if message.reply_to:
        data["h:Reply-To"] = message.reply_to
    for key, value in message.variables.items():
        data[f"v:{key}"] = value
    files = [("attachment", (a.filename, a.data, a.content_type)) for a in message.attachments]
    try:
        with Client(auth=("api", cfg.MAILGUN_API_KEY), api_url=cfg.MAILGUN_API_URL, timeout=(5.0, 15.0)) as client:
            response = client.messages.create(data=data, files=files or None, domain=cfg.MAILGUN_DOMAIN)
    except Exception as exc:  # the SDK raises requests/httpx errors and its own; all mean "not sent"
        raise MailError(f"Mailgun could not be reached ({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise MailError(f"Mailgun refused the message (HTTP {response.status_code})")
    try:
        message_id = response.json().get("id")
    except ValueError:
        return None
    return str(message_id) if message_id else None


def _send_outbox(cfg: Config, redis: Redis, message: Message) -> str:
    message_id = f"<outbox-{uuid.uuid4().hex}@localhost>"
    record = {"to": message.to, "subject": message.subject, "text": message.text, "html": message.html,
              "cc": list(message.cc), "from_name": message.from_name, "reply_to": message.reply_to,
              "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": len(a.data)}
                              for a in message.attachments],
              "variables": message.variables, "message_id": message_id, "sent_at": time.time()}
    pipe = redis.pipeline()
    pipe.lpush(OUTBOX_KEY, json.dumps(record))
    pipe.ltrim(OUTBOX_KEY, 0, OUTBOX_KEEP - 1)
    pipe.expire(OUTBOX_KEY, 86400)
    pipe.execute()
    if cfg.is_development:
        # Development only: the person running `make dev` reads the code here (never in other environments).
        print(f"\n[outbox] to {message.to}: {message.subject}\n{message.text}\n", file=sys.stderr, flush=True)
    return message_id


def outbox(redis: Redis, limit: int = OUTBOX_KEEP) -> list[dict]:
    """The newest messages in the development outbox."""
    return [json.loads(raw) for raw in redis.lrange(OUTBOX_KEY, 0, limit - 1)]
