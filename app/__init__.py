"""The Flask application: ``create_app(config=None)`` is the one place that wires everything."""

from __future__ import annotations

import logging
import time
from datetime import UTC
from typing import Any

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import Config
from app.services import EXTENSION as SERVICES
from app.services import Services

log = logging.getLogger("app.request")


def create_app(config: Config | None = None) -> Flask:
    cfg = config or Config.from_env()
    if config is not None:
        cfg.validate()
    app = Flask(__name__)
    app.config["BI"] = cfg
    app.config.update(
        SECRET_KEY=cfg.SECRET_KEY,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.is_production,
        SESSION_COOKIE_NAME="__Host-bi_session" if cfg.is_production else "bi_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=cfg.is_production,
        PREFERRED_URL_SCHEME="https" if cfg.is_production else "http",
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        TESTING=cfg.APP_ENV == "test",
    )
    if cfg.TRUSTED_PROXY_COUNT > 0:
        n = cfg.TRUSTED_PROXY_COUNT
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]

    from app.observability.logs import configure_logging

    configure_logging(cfg.LOG_LEVEL, cfg.LOG_FORMAT)
    services = _init_services(app, cfg)
    _init_request_context(app, cfg)

    from app.auth.oidc import init_oidc
    from app.auth.sessions import init_login
    from app.security.cors import init_cors
    from app.security.csrf import init_csrf
    from app.security.guest_sessions import init_guest_sessions
    from app.security.headers import init_headers
    from app.security.limits import init_limits
    from app.security.server_sessions import init_server_sessions
    from app.support.views import init_support
    from app.views.errors import init_error_pages
    from app.views.htmx import init_htmx

    init_cors(app, cfg)  # first, so a preflight is answered before sessions are loaded
    init_server_sessions(app, services.redis, cfg.SESSION_IDLE_MINUTES, cfg.SESSION_ABSOLUTE_HOURS)
    init_guest_sessions(app, services.redis)  # guest reviewer pages (/g/): their own cookie and timeout
    init_login(app)
    init_oidc(app, cfg)
    init_support(app)
    init_csrf(app)
    init_headers(app, cfg)
    init_limits(app, cfg)
    init_error_pages(app)
    init_htmx(app)
    _register_blueprints(app, cfg)
    _register_cli(app)

    from app.observability.tracing import init_tracing

    init_tracing(app, services.engine, cfg.OTEL_EXPORTER, cfg.OTEL_EXPORTER_OTLP_ENDPOINT,
                 cfg.OTEL_SERVICE_NAME)
    return app


def _init_services(app: Flask, cfg: Config) -> Services:
    from app.audit.log import ChainKeys, bind_chain_keys
    from app.db import make_engine, make_session_factory
    from app.jobs.queue import redis_connection
    from app.observability.errors import ErrorReporter
    from app.security.crypto import Keyring
    from app.tenancy import close_db_session

    if not cfg.DATABASE_URL:
        from app.config import ConfigError

        raise ConfigError("DATABASE_URL: required (the app role's connection, not the owner's)")
    engine = make_engine(cfg.DATABASE_URL)
    services = Services(config=cfg, engine=engine, session_factory=make_session_factory(engine),
                        redis=redis_connection(cfg.REDIS_URL), keyring=Keyring.from_config(cfg.ENCRYPTION_KEYS),
                        errors=ErrorReporter(cfg))
    # The chain keys travel with the session factory, as the tenant travels with the session.
    bind_chain_keys(services.session_factory, ChainKeys.from_config(cfg.AUDIT_CHAIN_KEYS))
    app.extensions[SERVICES] = services
    # The same objects under their old names, for tests and scripts that read them (app code uses Services).
    app.extensions.update(engine=services.engine, session_factory=services.session_factory, redis=services.redis,
                          keyring=services.keyring, errors=services.errors)
    app.teardown_appcontext(close_db_session)
    return services


def _init_request_context(app: Flask, cfg: Config) -> None:
    from app.auth.roles import current_user_can
    from app.auth.sessions import current_tenant_name
    from app.observability.logs import new_request_id, request_id_var, tenant_id_var
    from app.observability.paths import recordable_path
    from app.support.views import banner_grant

    @app.before_request
    def _start() -> None:
        g.request_id = new_request_id(request.headers.get("X-Request-ID"))
        g.request_started = time.perf_counter()
        g.tenant_id = None
        g.tokens = (request_id_var.set(g.request_id), tenant_id_var.set(None))

    @app.after_request
    def _finish(response: Any) -> Any:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        g.response_ok = response.status_code < 400  # the request's transaction commits only then
        if request.endpoint != "static":
            path = recordable_path()
            log.info("%s %s %s", request.method, path, response.status_code, extra={
                "event": "request", "method": request.method, "path": path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000, 1),
            })
        return response

    @app.teardown_request
    def _reset(_exc: BaseException | None) -> None:
        tokens = g.pop("tokens", None)
        if tokens:
            request_id_var.reset(tokens[0])
            tenant_id_var.reset(tokens[1])

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"request_id": g.get("request_id"), "app_env": cfg.APP_ENV, "can": current_user_can,
                "current_tenant_name": current_tenant_name, "support_banner": banner_grant}

    _init_time_filters(app)


def _init_time_filters(app: Flask) -> None:
    """Times on pages in the workspace's zone, with its abbreviation; ``iso`` for ``<time datetime>``."""
    from app.tenants.workspace import as_datetime, format_local, format_local_date, workspace_zone

    def _isotime(value: Any) -> str:
        return format_local(value, workspace_zone())

    def _localtime(value: Any, fmt: str = "%d %b %Y %H:%M") -> str:
        return format_local(value, workspace_zone(), fmt)

    def _localdate(value: Any, fmt: str = "%d %b %Y") -> str:
        return format_local_date(value, workspace_zone(), fmt)

    def _iso(value: Any) -> str:
        return as_datetime(value).astimezone(UTC).isoformat(timespec="seconds") if value not in (None, "") else ""

    app.add_template_filter(_isotime, "isotime")
    app.add_template_filter(_localtime, "localtime")
    app.add_template_filter(_localdate, "localdate")
    app.add_template_filter(_iso, "iso")


def _register_blueprints(app: Flask, cfg: Config) -> None:
    from app.audit.views import bp as audit_bp
    from app.auth.policy import bp as sign_in_policy_bp
    from app.auth.sso import bp as sso_bp
    from app.auth.views import bp as auth_bp
    from app.billing.views import bp as billing_bp
    from app.billing.webhook_views import bp as billing_hooks_bp
    from app.branding.views import bp as branding_bp
    from app.connectwise.views import bp as connectwise_bp
    from app.invoices.public import bp as public_invoices_bp
    from app.invoices.views import bp as invoices_bp
    from app.onboarding.signup_views import bp as signup_bp
    from app.review.callback_views import bp as review_callbacks_bp
    from app.review.comment_views import bp as review_comments_bp
    from app.review.decision_views import bp as review_decisions_bp
    from app.review.edit_views import bp as review_edits_bp
    from app.review.guest_views import bp as review_guest_bp
    from app.review.guest_views import staff_bp as review_guests_bp
    from app.review.hook_views import bp as review_hooks_bp
    from app.review.invoice_views import bp as review_invoice_bp
    from app.review.reviewer_views import bp as review_reviewers_bp
    from app.review.settings_views import bp as review_settings_bp
    from app.review.status_map_views import bp as review_status_map_bp
    from app.review.views import bp as review_bp
    from app.sending.settings_views import bp as sending_settings_bp
    from app.sending.views import bp as sending_bp
    from app.sending.webhook_views import bp as sending_hooks_bp
    from app.support.views import bp as support_bp
    from app.tenants.views import bp as workspace_bp
    from app.users.views import bp as users_bp
    from app.views.health import bp as health_bp
    from app.views.main import bp as main_bp

    for bp in (health_bp, main_bp, auth_bp, audit_bp, connectwise_bp, branding_bp, invoices_bp, public_invoices_bp,
               users_bp, support_bp, sso_bp, sign_in_policy_bp, review_hooks_bp, review_bp, review_settings_bp,
               review_invoice_bp, review_reviewers_bp, review_decisions_bp):
        app.register_blueprint(bp)
    app.register_blueprint(review_callbacks_bp)
    app.register_blueprint(review_edits_bp)
    app.register_blueprint(review_status_map_bp)
    app.register_blueprint(review_comments_bp)
    app.register_blueprint(review_guest_bp)
    app.register_blueprint(review_guests_bp)
    app.register_blueprint(sending_bp)
    app.register_blueprint(sending_settings_bp)
    app.register_blueprint(sending_hooks_bp)
    app.register_blueprint(billing_bp)
    app.register_blueprint(billing_hooks_bp)
    app.register_blueprint(signup_bp)
    app.register_blueprint(workspace_bp)
    if cfg.is_development:
        from app.auth.dev import bp as dev_bp

        app.register_blueprint(dev_bp)


def _register_cli(app: Flask) -> None:
    from app.cli import register

    register(app)
