"""Observability: structured logs with request ids, OpenTelemetry tracing, error reporting."""
