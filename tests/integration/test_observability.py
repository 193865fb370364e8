"""Tracing spans for requests, SQL, Redis and outbound HTTP; exception reports without secrets."""

from __future__ import annotations

import gzip
import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask import Blueprint
from flask_login import login_required
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import sign_in

probe = Blueprint("obs_probe", __name__)
SECRET_IN_MESSAGE = "test-secret-key-" + "x" * 32


@probe.get("/_obs/work")
def _work():  # type: ignore[no-untyped-def]
    from flask import current_app
    from sqlalchemy import text

    from app.tenancy import db_session

    db_session().execute(text("select 1"))
    current_app.extensions["redis"].ping()
    return "done"


@probe.get("/_obs/boom")
@login_required
def _boom():  # type: ignore[no-untyped-def]
    raise ValueError(f"failed with {SECRET_IN_MESSAGE} and Basic YWJjOmRlZmdoaWprbA==")


class _Capture(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        _Capture.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": 1}')

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def exporter():  # type: ignore[no-untyped-def]
    from app.observability.tracing import add_span_processor

    memory = InMemorySpanExporter()
    add_span_processor(SimpleSpanProcessor(memory))
    return memory


@pytest.fixture(scope="module")
def capture_server():  # type: ignore[no-untyped-def]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def traced_app(config, exporter, capture_server):  # type: ignore[no-untyped-def]
    from app import create_app
    from app.observability.tracing import init_tracing

    application = create_app(replace(config, POSTHOG_API_KEY="phc_test", POSTHOG_HOST=capture_server))
    application.register_blueprint(probe)
    init_tracing(application, application.extensions["engine"], "none", force=True)
    yield application
    application.extensions["engine"].dispose()


def test_a_request_produces_spans_for_the_request_sql_and_redis(traced_app, exporter, make_tenant):
    exporter.clear()
    client = traced_app.test_client()
    sign_in(client, make_tenant())
    assert client.get("/_obs/work").status_code == 200
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert any("/_obs/work" in n for n in names), names
    assert any(s.attributes.get("db.system") in ("postgresql", "postgres") or
               s.attributes.get("db.system.name") in ("postgresql", "postgres") for s in spans), names
    assert any(s.attributes.get("db.system") == "redis" or s.attributes.get("db.system.name") == "redis"
               for s in spans), names
    request_span = next(s for s in spans if "/_obs/work" in s.name)
    # The request's own SQL runs in the request's trace (set-up SQL before it has traces of its own).
    sql_spans = [s for s in spans if "select" in s.name.lower() or "SELECT" in str(s.attributes)]
    assert any(s.context.trace_id == request_span.context.trace_id for s in sql_spans)


def test_outbound_http_is_traced(traced_app, exporter, capture_server):
    import httpx

    exporter.clear()
    httpx.post(capture_server + "/ping", content=b"{}")
    assert any(s.attributes.get("http.request.method") == "POST" or s.attributes.get("http.method") == "POST"
               for s in exporter.get_finished_spans())


def test_a_forced_error_is_reported_with_tenant_and_request_id_and_without_secrets(traced_app, make_tenant):
    _Capture.bodies.clear()
    t = make_tenant()
    client = traced_app.test_client()
    sign_in(client, t)
    response = client.get("/_obs/boom", headers={"X-Request-ID": "report-me-1234"})
    assert response.status_code == 500
    traced_app.extensions["errors"].flush()
    payload = b"\n".join(_Capture.bodies).decode()
    assert "ValueError" in payload
    assert "report-me-1234" in payload and str(t.id) in payload
    assert SECRET_IN_MESSAGE not in payload and "x" * 32 not in payload
    assert "YWJjOmRlZmdoaWprbA==" not in payload
    events = [json.loads(b) for b in _Capture.bodies]
    assert events


def test_public_link_tokens_never_reach_spans_or_the_request_log(traced_app, exporter, caplog):
    import secrets

    token = secrets.token_urlsafe(32)
    exporter.clear()
    with caplog.at_level("INFO", logger="app.request"):
        response = traced_app.test_client().get(f"/i/{token}?ref=mail")
    assert response.status_code in (404, 410)
    spans = exporter.get_finished_spans()
    assert spans
    for span in spans:
        assert token not in span.name and token not in str(dict(span.attributes or {})), span.name
    assert any("/i/<token>" in str(dict(s.attributes or {})) for s in spans)
    assert token not in caplog.text and "/i/<token>" in caplog.text


def test_sign_in_callback_codes_and_states_never_reach_spans(traced_app, exporter):
    import secrets

    code, state = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    exporter.clear()
    traced_app.test_client().get(f"/sign-in/sso/google/callback?code={code}&state={state}")
    spans = exporter.get_finished_spans()
    assert any("/sign-in/sso/google/callback" in str(dict(s.attributes or {})) for s in spans)
    for span in spans:
        recorded = span.name + str(dict(span.attributes or {}))
        assert code not in recorded and state not in recorded, span.name
