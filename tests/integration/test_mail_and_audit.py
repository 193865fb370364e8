"""Mail through the official Mailgun SDK (pointed at a local endpoint), and sign-in events audited with the source IP."""

from __future__ import annotations

import base64
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from tests.conftest import csrf_of
from tests.integration.signin_helpers import (
    ask_for_code,
    audit_rows,
    run_delayed_jobs,
    run_jobs,
    sign_in_with_code,
    type_code,
)


class _Mailgun(BaseHTTPRequestHandler):
    """The HTTP boundary Mailgun would be: records what the SDK sends, answers like the real API."""

    received: list[dict] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        fields = {}
        if "multipart/form-data" in self.headers.get("Content-Type", ""):
            boundary = self.headers["Content-Type"].split("boundary=")[1].encode()
            for part in body.split(b"--" + boundary):
                if b'name="' in part:
                    name = part.split(b'name="')[1].split(b'"')[0].decode()
                    fields[name] = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0].decode()
        else:
            fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        type(self).received.append({"path": self.path, "auth": self.headers.get("Authorization", ""), "fields": fields})
        payload = b'{"id": "<20261124.1@mg.example>", "message": "Queued. Thank you."}'
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def mailgun():  # type: ignore[no-untyped-def]
    _Mailgun.received, _Mailgun.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Mailgun)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def mailgun_app(config, mailgun, redis_conn):  # type: ignore[no-untyped-def]
    from app import create_app

    application = create_app(replace(config, MAIL_BACKEND="mailgun", MAILGUN_API_KEY="key-test-123",
                                     MAILGUN_DOMAIN="mg.example.com",
                                     MAILGUN_API_URL=f"http://127.0.0.1:{mailgun.server_address[1]}"))
    yield application
    application.extensions["engine"].dispose()


def test_codes_are_sent_through_the_mailgun_sdk(mailgun_app, make_tenant):
    t = make_tenant()
    client = mailgun_app.test_client()
    ask_for_code(mailgun_app, client, t.owner_email)
    [sent] = _Mailgun.received
    assert sent["path"] == "/v3/mg.example.com/messages"
    assert base64.b64decode(sent["auth"].split()[1]).decode() == "api:key-test-123"
    fields = sent["fields"]
    assert fields["to"] == t.owner_email and fields["subject"] == "Your Better Invoice sign-in code"
    assert "<p" in fields["html"] and "127.0.0.1" in fields["text"]
    code = next(w for w in fields["text"].split() if w.isdigit() and len(w) == 6)
    assert type_code(client, code).headers["Location"] == "/"


def test_a_mailgun_failure_fails_the_job_with_its_reason_and_no_code(mailgun_app, make_tenant):
    from rq.registry import FailedJobRegistry

    from app.jobs.queue import get_queue

    _Mailgun.status = 500
    t = make_tenant()
    client = mailgun_app.test_client()
    response = client.post("/sign-in", data={"email": t.owner_email, "csrf_token": csrf_of(client)})
    assert response.status_code == 302  # the person sees the same page; the failure is the job's
    run_jobs(mailgun_app)
    queue = get_queue(mailgun_app.extensions["redis"], "mail")
    [job_id] = FailedJobRegistry(queue=queue).get_job_ids()
    job = queue.fetch_job(job_id)
    assert "Mailgun refused the message (HTTP 500)" in job.latest_result().exc_string
    sent_code = next(w for w in _Mailgun.received[0]["fields"]["text"].split() if w.isdigit() and len(w) == 6)
    assert sent_code not in job.latest_result().exc_string


def test_sign_in_failed_code_and_sign_out_are_audited_with_the_client_ip_behind_the_proxy(config, make_tenant,
                                                                                       redis_conn):
    from app import create_app

    app = create_app(replace(config, TRUSTED_PROXY_COUNT=1))
    try:
        t = make_tenant()
        client = app.test_client()
        client.environ_base.update({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.7"})
        ask_for_code(app, client, t.owner_email)
        type_code(client, "999999")  # wrong (one chance in a million of being right)
        sign_in_with_code(app, client, t.owner_email)
        client.post("/sign-out", data={"csrf_token": csrf_of(client)})
        run_delayed_jobs(app)  # failed codes are audited by a job, one row per email-hour (issue 9)
        rows = [(r.action, r.source_ip) for r in audit_rows(app, t.id)]
        for action in ("auth.code_failed", "auth.signed_in", "auth.signed_out"):
            assert (action, "198.51.100.7") in rows, action
    finally:
        app.extensions["engine"].dispose()


def test_without_a_trusted_proxy_the_forwarded_header_is_ignored(app, make_tenant):
    t = make_tenant()
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": "10.0.0.3", "HTTP_X_FORWARDED_FOR": "198.51.100.66"})
    sign_in_with_code(app, client, t.owner_email)
    rows = [(r.action, r.source_ip) for r in audit_rows(app, t.id)]
    assert ("auth.signed_in", "10.0.0.3") in rows


