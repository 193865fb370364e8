"""Exception reporting to PostHog (when POSTHOG_API_KEY is set), with tenant and request id, never secrets."""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

from app.config import Config, parse_encryption_keys
from app.observability.logs import request_id_var, tenant_id_var

log = logging.getLogger(__name__)
_BASIC_AUTH = re.compile(r"(?i)(basic|bearer)\s+[A-Za-z0-9+/=._-]{8,}")
_SCRUBBED = "[scrubbed]"


class ErrorReporter:
    """Wraps a PostHog client; a no-op when no key is configured."""

    def __init__(self, config: Config):
        self._client = None
        self._secrets = _secret_values(config)
        if config.POSTHOG_API_KEY:
            from posthog import Posthog

            self._client = Posthog(config.POSTHOG_API_KEY, host=config.POSTHOG_HOST,
                                   capture_exception_code_variables=False, before_send=self.scrub,
                                   enable_exception_autocapture=False)

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def scrub(self, event: Any) -> Any:
        """Remove configured secret values and credentials from everything the event carries."""
        return _scrub(event, self._secrets)

    def capture(self, exc: BaseException, **properties: Any) -> None:
        if self._client is None:
            return
        props = {"request_id": request_id_var.get(), "tenant_id": tenant_id_var.get(), **properties}
        try:
            self._client.capture_exception(exc, distinct_id=props.get("tenant_id") or "anonymous",
                                           properties=props)
        except Exception:  # reporting must never break the request that failed
            log.warning("error report not sent", exc_info=False)

    def flush(self) -> None:
        if self._client is not None:
            self._client.flush()

    def shutdown(self) -> None:
        if self._client is not None:
            self._client.shutdown()


def _secret_values(config: Config) -> list[str]:
    values = [config.SECRET_KEY]
    for _kid, key in parse_encryption_keys(config.ENCRYPTION_KEYS):
        values.append(base64.b64encode(key).decode())
    for url in (config.DATABASE_URL, config.REDIS_URL):
        password = re.search(r"://[^:/@]+:([^@]+)@", url or "")
        if password:
            values.append(password.group(1))
    return [v for v in values if v and len(v) >= 6]


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, _SCRUBBED)
        return _BASIC_AUTH.sub(r"\1 " + _SCRUBBED, value)
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secrets) for v in value]
    return value
