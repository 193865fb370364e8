"""A local stand-in for Mailgun's messages API (the HTTP boundary only): a server on 127.0.0.1 that records what
the official SDK POSTs (form fields, repeated fields, attachments with their bytes) and answers as Mailgun does.

Use the fixtures: ``mailgun_fake`` (the server; ``.received``, ``.statuses``) and ``mailgun_app`` (the app with
``MAIL_BACKEND=mailgun`` pointed at it). Bring both into a test module by assignment (so fixture parameters do
not read as redefined imports): ``mailgun_fake, mailgun_app = mailgun_fixtures.mailgun_fake,
mailgun_fixtures.mailgun_app`` after ``from tests.integration import mailgun_fake as mailgun_fixtures``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest


@dataclass
class Part:
    """One attachment as Mailgun received it."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Received:
    """One POST to the messages endpoint."""

    path: str
    auth: str
    fields: dict[str, list[str]] = field(default_factory=dict)
    attachments: list[Part] = field(default_factory=list)

    def one(self, name: str) -> str:
        """The single value of a form field ('' when absent)."""
        values = self.fields.get(name, [])
        return values[0] if values else ""


class MailgunFake:
    """The running server: ``received`` in order; ``statuses`` the HTTP statuses to answer with, one per request
    (the last repeats; 200 when empty)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got = Received(self.path, self.headers.get("Authorization", ""))
                _parse(self.headers.get("Content-Type", ""), body, got)
                with fake._lock:
                    fake.received.append(got)
                    status = fake.statuses.pop(0) if len(fake.statuses) > 1 else (fake.statuses or [200])[0]
                n = len(fake.received)
                payload = (f'{{"id": "<2026.{n}@mg.example.com>", "message": "Queued. Thank you."}}'.encode()
                           if status < 400 else b'{"message": "Internal error"}')
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _parse(content_type: str, body: bytes, got: Received) -> None:
    if "multipart/form-data" not in content_type:
        for key, values in parse_qs(body.decode()).items():
            got.fields.setdefault(key, []).extend(values)
        return
    boundary = content_type.split("boundary=")[1].strip('"').encode()
    for part in body.split(b"--" + boundary):
        if b"\r\n\r\n" not in part:
            continue
        head, data = part.split(b"\r\n\r\n", 1)
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers = head.decode(errors="replace")
        if 'name="' not in headers:
            continue
        name = headers.split('name="')[1].split('"')[0]
        if 'filename="' in headers:
            filename = headers.split('filename="')[1].split('"')[0]
            ctype = next((line.split(":", 1)[1].strip() for line in headers.split("\r\n")
                          if line.lower().startswith("content-type:")), "")
            got.attachments.append(Part(filename, ctype, data))
        else:
            got.fields.setdefault(name, []).append(data.decode())


@pytest.fixture()
def mailgun_fake() -> Iterator[MailgunFake]:
    fake = MailgunFake()
    yield fake
    fake.stop()


@pytest.fixture()
def mailgun_app(config: Any, mailgun_fake: MailgunFake, redis_conn: Any) -> Iterator[Any]:
    """The app sending through the Mailgun SDK to ``mailgun_fake``."""
    from app import create_app

    application = create_app(replace(config, MAIL_BACKEND="mailgun", MAILGUN_API_KEY="key-test-123",
                                     MAILGUN_DOMAIN="mg.example.com", MAILGUN_API_URL=mailgun_fake.url))
    yield application
    application.extensions["engine"].dispose()
