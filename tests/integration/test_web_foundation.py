"""The web skeleton: CSRF, security headers, error pages, request ids, health, sign-in gate, client IP."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Blueprint, abort, request

from tests.conftest import csrf_of, sign_in

probe = Blueprint("probe", __name__)


@probe.post("/_probe/echo")
def _echo():  # type: ignore[no-untyped-def]
    return "ok"


@probe.get("/_probe/boom")
def _boom():  # type: ignore[no-untyped-def]
    secret = "test-secret-key-" + "x" * 32  # the app's SECRET_KEY: must never reach a report or a page
    raise RuntimeError(f"kaboom while holding {secret} and Basic dXNlcjpwYXNzd29yZA==")


@probe.get("/_probe/abort/<int:code>")
def _abort(code: int):  # type: ignore[no-untyped-def]
    abort(code)


@probe.get("/_probe/ip")
def _ip():  # type: ignore[no-untyped-def]
    return request.remote_addr or ""


@pytest.fixture(scope="module")
def probed_app(config):  # type: ignore[no-untyped-def]
    from app import create_app

    application = create_app(config)
    application.register_blueprint(probe)
    application.config["PROPAGATE_EXCEPTIONS"] = False
    yield application
    application.extensions["engine"].dispose()


def test_unsafe_requests_without_csrf_token_are_refused(probed_app):
    client = probed_app.test_client()
    response = client.post("/_probe/echo")
    assert response.status_code == 400
    assert b"Reload the page" in response.data


def test_unsafe_requests_with_a_wrong_token_are_refused_and_with_the_right_one_pass(probed_app):
    client = probed_app.test_client()
    token = csrf_of(client)
    assert client.post("/_probe/echo", headers={"X-CSRF-Token": "nope"}).status_code == 400
    assert client.post("/_probe/echo", headers={"X-CSRF-Token": token}).status_code == 200
    assert client.post("/_probe/echo", data={"csrf_token": token}).status_code == 200


def test_csrf_token_is_rendered_in_hx_headers_on_body(app, client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    html = client.get("/").get_data(as_text=True)
    with client.session_transaction() as sess:
        token = sess["_csrf"]
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in html


def test_security_headers_are_present(client):
    response = client.get("/sign-in")
    h = response.headers
    assert "script-src 'self'" in h["Content-Security-Policy"] and "unsafe-inline" not in h["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert h["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in h  # only in production, behind TLS


def test_production_sends_hsts_and_secure_cookies(config):
    from dataclasses import replace

    from app import create_app

    prod = create_app(replace(config, APP_ENV="production", BASE_URL="https://bi.example", MAILGUN_API_KEY="k" * 20,
                               MAILGUN_DOMAIN="mg.bi.example", MAILGUN_WEBHOOK_SIGNING_KEY="w" * 32,
                               STRIPE_SECRET_KEY="sk_live_" + "s" * 24, STRIPE_WEBHOOK_SECRET="whsec_" + "h" * 32,
                               STRIPE_PRICE_PRO_MONTHLY="price_m", STRIPE_PRICE_PRO_YEARLY="price_y"))
    assert prod.config["SESSION_COOKIE_SECURE"] is True
    assert prod.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    response = prod.test_client().get("/sign-in", base_url="https://bi.example")
    assert "max-age=" in response.headers["Strict-Transport-Security"]
    prod.extensions["engine"].dispose()


def test_pages_contain_no_inline_script(client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    for path in ("/", "/sign-in", "/settings/audit-log/", "/nope"):
        html = client.get(path).get_data(as_text=True)
        for chunk in html.split("<script")[1:]:
            assert chunk.split(">", 1)[0].strip().startswith("src="), path


@pytest.mark.parametrize("code", [400, 403, 404, 410, 422, 429])
def test_error_pages_render_a_clear_message(probed_app, code):
    response = probed_app.test_client().get(f"/_probe/abort/{code}")
    assert response.status_code == code
    html = response.get_data(as_text=True)
    assert f'<p class="error-code">{code}</p>' in html
    assert "Traceback" not in html


def test_unknown_pages_answer_404_with_the_page_not_a_trace(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert b"There is nothing here" in response.data and b"Traceback" not in response.data


def test_a_crash_answers_500_without_a_stack_trace_or_secret(probed_app):
    response = probed_app.test_client().get("/_probe/boom")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in html
    assert "Traceback" not in html and "kaboom" not in html and "x" * 32 not in html
    assert response.headers["X-Request-ID"] in html


def test_htmx_errors_are_swapped_into_the_toast_area(probed_app):
    response = probed_app.test_client().get("/_probe/abort/403", headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert response.headers["HX-Retarget"] == "#toasts"
    assert "<html" not in response.get_data(as_text=True)


def test_every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    assert len(first) >= 16
    kept = client.get("/healthz", headers={"X-Request-ID": "edge-1234abcd"}).headers["X-Request-ID"]
    assert kept == "edge-1234abcd"
    replaced = client.get("/healthz", headers={"X-Request-ID": "<script>"}).headers["X-Request-ID"]
    assert replaced != "<script>"


def test_log_lines_carry_the_request_id(client, caplog):
    from app.observability.logs import ContextFilter

    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.INFO, logger="app.request"):
        response = client.get("/sign-in", headers={"X-Request-ID": "trace-me-12345"})
    lines = [r for r in caplog.records if r.name == "app.request"]
    assert response.status_code == 200
    assert lines and all(getattr(r, "request_id", None) == "trace-me-12345" for r in lines)


def test_json_log_lines_are_structured():
    from app.observability.logs import ContextFilter, JsonFormatter, request_id_var

    token = request_id_var.set("rid-123456789")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        ContextFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["msg"] == "hello world" and line["request_id"] == "rid-123456789" and line["level"] == "info"


def test_healthz_is_200_when_postgres_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"postgres": True, "redis": True}


def test_healthz_is_503_when_redis_does_not_answer(config):
    from dataclasses import replace

    from app import create_app
    from devtools.services import free_port

    broken = create_app(replace(config, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"))
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"postgres": True, "redis": False}
    broken.extensions["engine"].dispose()


def test_healthz_is_503_when_postgres_does_not_answer(config):
    from dataclasses import replace

    from app import create_app
    from devtools.services import free_port

    broken = create_app(replace(config, DATABASE_URL=f"postgresql://bi_web:x@127.0.0.1:{free_port()}/none"))
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["postgres"] is False


def test_signed_out_visitors_are_sent_to_sign_in_and_htmx_gets_hx_redirect(client):
    response = client.get("/")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    hx = client.get("/", headers={"HX-Request": "true"})
    assert hx.status_code == 401 and "/sign-in" in hx.headers["HX-Redirect"]


def test_the_dashboard_shows_tenant_user_menu_and_the_connect_connectwise_empty_state(client, make_tenant):
    t = make_tenant("Northwind MSP")
    sign_in(client, t)
    html = client.get("/").get_data(as_text=True)
    assert "Northwind MSP" in html
    assert t.owner_email in html and "Sign out" in html
    assert "Connect ConnectWise" in html


def test_a_deactivated_user_is_signed_out(app, client, make_tenant):
    from app.tenancy import tenant_session
    from app.users.models import User

    t = make_tenant()
    sign_in(client, t)
    assert client.get("/").status_code == 200
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        session.get(User, t.owner_id).active = False
    assert client.get("/").status_code == 302


def test_client_ip_is_the_peer_without_a_proxy_and_the_forwarded_one_behind_it(config):
    from dataclasses import replace

    from app import create_app

    for proxies, expected in ((0, "10.0.0.1"), (1, "198.51.100.7")):
        application = create_app(replace(config, TRUSTED_PROXY_COUNT=proxies))
        application.register_blueprint(probe)
        ip = application.test_client().get(
            "/_probe/ip", headers={"X-Forwarded-For": "203.0.113.1, 198.51.100.7"},
            environ_base={"REMOTE_ADDR": "10.0.0.1"}).get_data(as_text=True)
        assert ip == expected, proxies
        application.extensions["engine"].dispose()


def test_htmx_is_vendored_and_served_by_the_app(client):
    response = client.get("/static/js/htmx-2.0.11.min.js")
    assert response.status_code == 200 and b'version:"2.0.11"' in response.data
