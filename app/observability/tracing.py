"""OpenTelemetry: requests, SQL, Redis and outbound HTTP. Exporter chosen by OTEL_EXPORTER (off by default)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

_state: dict[str, Any] = {"provider": None, "libraries": False}


def tracer_provider(service_name: str = "better-invoice") -> TracerProvider:
    """The process's provider, created once (OpenTelemetry allows one global provider)."""
    if _state["provider"] is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        trace.set_tracer_provider(provider)
        _state["provider"] = provider
    return _state["provider"]


def add_span_processor(processor: SpanProcessor) -> None:
    tracer_provider().add_span_processor(processor)


def _exporter_processor(kind: str, endpoint: str) -> SpanProcessor | None:
    if kind == "console":
        return SimpleSpanProcessor(ConsoleSpanExporter())
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter())
    return None


def _instrument_libraries() -> None:
    if _state["libraries"]:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument(tracer_provider=tracer_provider())
    HTTPXClientInstrumentor().instrument(tracer_provider=tracer_provider())
    _state["libraries"] = True


def init_tracing(app: Any, engine: Any, exporter: str, endpoint: str = "", service_name: str = "better-invoice",
                 force: bool = False) -> bool:
    """Instrument Flask, SQLAlchemy, Redis and httpx when an exporter is configured (or ``force``)."""
    processor = _exporter_processor(exporter, endpoint)
    if processor is None and not force:
        return False
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    provider = tracer_provider(service_name)
    if processor is not None:
        provider.add_span_processor(processor)
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider, excluded_urls="healthz,static/.*",
                                       request_hook=_scrub_secret_path,
                                       response_hook=lambda span, _status, _headers: _scrub_secret_path(span, {}))
    SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=provider, enable_commenter=False)
    _instrument_libraries()
    return True


def _scrub_secret_path(span: Any, _environ: dict) -> None:
    """Spans record the recordable path (the route pattern where the path holds a token) and never a query string.

    Queries carry secrets too (the SSO callback's ``code`` and ``state``) or search terms typed by users, so no span
    keeps one. Run at the start and again at the response, because the instrumentation writes the URL attributes
    both times.
    """
    from flask import has_request_context, request

    from app.observability.paths import recordable_path

    if not has_request_context() or span is None or not span.is_recording():
        return
    path = recordable_path()
    for key in ("http.target", "url.path"):
        span.set_attribute(key, path)
    for key in ("http.url", "url.full"):
        span.set_attribute(key, request.host_url.rstrip("/") + path)
    span.set_attribute("url.query", "")


def tracer(name: str = "better-invoice") -> trace.Tracer:
    return trace.get_tracer(name)
