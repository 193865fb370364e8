"""One Config, read from the environment; production refuses to start without its secrets."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

ENVIRONMENTS = ("development", "test", "production")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


def parse_encryption_keys(raw: str, name: str = "ENCRYPTION_KEYS") -> list[tuple[str, bytes]]:
    """Parse a keyring setting (``ENCRYPTION_KEYS``, ``AUDIT_CHAIN_KEYS``): ``kid:base64key[,...]``, first one used."""
    keys: list[tuple[str, bytes]] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        kid, sep, b64 = part.partition(":")
        if not sep or not kid or len(kid) > 32 or not kid.isascii() or not kid.replace("-", "").isalnum():
            raise ConfigError(f"{name}: each entry must be 'keyid:base64key' (key id: letters, digits, '-')")
        try:
            key = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(f"{name}: key '{kid}' is not valid base64") from exc
        if len(key) != 32:
            raise ConfigError(f"{name}: key '{kid}' must be 32 bytes (256 bits), got {len(key)}")
        if any(k == kid for k, _ in keys):
            raise ConfigError(f"{name}: key id '{kid}' appears twice")
        keys.append((kid, key))
    if not keys:
        raise ConfigError(f"{name}: no key given")
    return keys


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased and without a default port (how browsers send Origin)."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if ":" in host:
        host = f"[{host}]"  # IPv6 literals keep their brackets in an origin
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORTS.get(scheme) else "")


def parse_origins(raw: str, *, https_only: bool) -> frozenset[str]:
    """Parse ``CORS_ALLOWED_ORIGINS``: comma-separated exact origins ``scheme://host[:port]``, no paths, no wildcards."""
    origins = set()
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        parts = urlsplit(part)
        try:
            port_ok = parts.port is None or 0 < parts.port < 65536
        except ValueError:
            port_ok = False
        if (parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or "*" in part or parts.username
                or parts.password or parts.path not in ("", "/") or parts.query or parts.fragment or not port_ok):
            raise ConfigError(f"CORS_ALLOWED_ORIGINS: {part!r} is not an origin (scheme://host[:port], exact)")
        if https_only and parts.scheme.lower() != "https":
            raise ConfigError(f"CORS_ALLOWED_ORIGINS: {part!r} must be https:// in production")
        origins.add(origin_of(part))
    return frozenset(origins)


def _parse_value(raw: str, current: object) -> object:
    if isinstance(current, bool):
        lowered = raw.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ValueError(raw)
        return lowered in ("true", "1", "yes", "on")
    if isinstance(current, str):
        return raw
    if isinstance(current, int | float):
        return type(current)(raw)
    raise ValueError(raw)  # no setting of another type is read from the environment


# Development/test defaults: never valid in production (the checks below refuse them there).
_DEV_SECRET_KEY = "dev-only-secret-key-change-me-0123456789abcdef"  # noqa: S105 (refused in production)
_DEV_ENCRYPTION_KEYS = "dev1:" + base64.b64encode(b"\x01" * 32).decode()
_DEV_AUDIT_CHAIN_KEYS = "devchain1:" + base64.b64encode(b"\x03" * 32).decode()


@dataclass
class Config:
    """Every setting of the app. ``Config.from_env()`` reads them; tests pass overrides."""

    APP_ENV: str = "development"
    SECRET_KEY: str = _DEV_SECRET_KEY
    DATABASE_URL: str = ""
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    ENCRYPTION_KEYS: str = _DEV_ENCRYPTION_KEYS
    BASE_URL: str = "http://127.0.0.1:5000"
    TRUSTED_PROXY_COUNT: int = 0
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: str = "json"
    OTEL_EXPORTER: str = "none"
    OTEL_EXPORTER_OTLP_ENDPOINT: str = ""
    OTEL_SERVICE_NAME: str = "better-invoice"
    POSTHOG_API_KEY: str = ""
    POSTHOG_HOST: str = "https://us.i.posthog.com"
    CONNECTWISE_CLIENT_ID: str = ""
    CONNECTWISE_TIMEOUT_SECONDS: float = 10.0
    CONNECTWISE_CACHE_TTL_SECONDS: int = 60
    CONNECTWISE_MAX_REQUESTS_PER_MINUTE: int = 900  # per tenant: site + company id
    CONNECTWISE_HOST_MAX_REQUESTS_PER_MINUTE: int = 6000  # safety valve per host, all tenants together
    CONNECTWISE_PAGE_WAIT_SECONDS: float = 1.0
    CONNECTWISE_JOB_WAIT_SECONDS: float = 120.0
    CONNECTWISE_PAGE_DEADLINE_SECONDS: float = 10.0
    CONNECTWISE_JOB_DEADLINE_SECONDS: float = 300.0
    MEMBER_SYNC_INTERVAL_MINUTES: int = 360
    REVIEW_SWEEP_INTERVAL_MINUTES: int = 15
    RATE_LIMITS_ENABLED: bool = True
    SESSION_IDLE_MINUTES: int = 30
    SESSION_ABSOLUTE_HOURS: int = 12
    MAIL_BACKEND: str = ""
    MAIL_FROM: str = "Better Invoice <no-reply@localhost>"
    MAILGUN_API_KEY: str = ""
    MAILGUN_DOMAIN: str = ""
    MAILGUN_API_URL: str = "https://api.mailgun.net"
    MAILGUN_WEBHOOK_SIGNING_KEY: str = ""  # verifies Mailgun's delivery webhook (Mailgun: Sending > Webhooks)
    SUPPORT_STAFF_EMAILS: str = ""
    # Stripe (issue 15): secret key, webhook signing secret, the Pro prices; the API base is for tests (localstripe).
    STRIPE_SECRET_KEY: str = ""
    STRIPE_WEBHOOK_SECRET: str = ""
    STRIPE_PRICE_PRO_MONTHLY: str = ""
    STRIPE_PRICE_PRO_YEARLY: str = ""
    STRIPE_API_BASE: str = "https://api.stripe.com"
    # Single sign-on: a provider is offered only when both its client id and secret are set.
    GOOGLE_CLIENT_ID: str = ""
    GOOGLE_CLIENT_SECRET: str = ""
    GOOGLE_METADATA_URL: str = "https://accounts.google.com/.well-known/openid-configuration"
    MICROSOFT_CLIENT_ID: str = ""
    MICROSOFT_CLIENT_SECRET: str = ""
    MICROSOFT_METADATA_URL: str = "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
    # HMAC keys of the audit chain, kept outside the database so someone with database access cannot re-sign it.
    AUDIT_CHAIN_KEYS: str = _DEV_AUDIT_CHAIN_KEYS
    CORS_ALLOWED_ORIGINS: str = ""
    extra: dict = field(default_factory=dict)

    # Variables that production must set, with their check.
    # TRUSTED_PROXY_COUNT is listed although 0 is a valid value: a deploy must say how many proxies it has, because
    # a wrong guess either trusts a forged X-Forwarded-For or records the proxy's address as everyone's.
    REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ENCRYPTION_KEYS", "BASE_URL",
                              "CONNECTWISE_CLIENT_ID", "MAILGUN_API_KEY", "MAILGUN_DOMAIN", "TRUSTED_PROXY_COUNT",
                              "AUDIT_CHAIN_KEYS", "MAILGUN_WEBHOOK_SIGNING_KEY", "STRIPE_SECRET_KEY",
                              "STRIPE_WEBHOOK_SECRET", "STRIPE_PRICE_PRO_MONTHLY", "STRIPE_PRICE_PRO_YEARLY")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Build the config from environment variables and validate it."""
        env = os.environ if environ is None else environ
        if not env.get("APP_ENV", "").strip():
            # No default: a deploy that forgets it must not run with development secrets and the dev outbox.
            raise ConfigError(f"APP_ENV: not set; set it to one of {', '.join(ENVIRONMENTS)} "
                              "(make dev and make test set it for you)")
        cfg = cls()
        for name in cls.__dataclass_fields__:
            if name == "extra" or name not in env:
                continue
            raw = env[name]
            current = getattr(cfg, name)
            try:
                value = _parse_value(raw, current)
            except ValueError as exc:
                raise ConfigError(f"{name}: expected a {type(current).__name__}, got {raw!r}") from exc
            setattr(cfg, name, value)
        cfg.validate(env)
        return cfg

    @property
    def mail_backend(self) -> str:
        """Where mail goes: Mailgun in production unless told otherwise; a local outbox elsewhere."""
        return self.MAIL_BACKEND or ("mailgun" if self.is_production else "outbox")

    @property
    def support_staff(self) -> frozenset[str]:
        """Platform support staff emails, lower-cased."""
        return frozenset(e.strip().lower() for e in self.SUPPORT_STAFF_EMAILS.split(",") if e.strip())

    @property
    def is_production(self) -> bool:
        return self.APP_ENV == "production"

    @property
    def is_development(self) -> bool:
        return self.APP_ENV == "development"

    def _validate_connectwise_budget(self) -> None:
        if self.CONNECTWISE_MAX_REQUESTS_PER_MINUTE < 1:
            raise ConfigError("CONNECTWISE_MAX_REQUESTS_PER_MINUTE: must be a positive number of requests")
        if self.CONNECTWISE_HOST_MAX_REQUESTS_PER_MINUTE < self.CONNECTWISE_MAX_REQUESTS_PER_MINUTE:
            raise ConfigError("CONNECTWISE_HOST_MAX_REQUESTS_PER_MINUTE: must be at least "
                              "CONNECTWISE_MAX_REQUESTS_PER_MINUTE (the valve is for all tenants of a host)")
        for kind in ("PAGE", "JOB"):
            wait, deadline = (getattr(self, f"CONNECTWISE_{kind}_{what}_SECONDS") for what in ("WAIT", "DEADLINE"))
            if wait < 0 or deadline <= wait:
                raise ConfigError(f"CONNECTWISE_{kind}_DEADLINE_SECONDS: must be longer than "
                                  f"CONNECTWISE_{kind}_WAIT_SECONDS (the wait for a slot is part of the deadline)")

    def validate(self, env: Mapping[str, str] | None = None) -> None:
        """Refuse settings that cannot work; in production, refuse missing or weak secrets."""
        if self.APP_ENV not in ENVIRONMENTS:
            raise ConfigError(f"APP_ENV: must be one of {', '.join(ENVIRONMENTS)}, got {self.APP_ENV!r}")
        parse_encryption_keys(self.ENCRYPTION_KEYS)
        parse_encryption_keys(self.AUDIT_CHAIN_KEYS, "AUDIT_CHAIN_KEYS")
        parse_origins(self.CORS_ALLOWED_ORIGINS, https_only=self.is_production)
        if self.MAIL_BACKEND not in ("", "outbox", "mailgun"):
            raise ConfigError(f"MAIL_BACKEND: must be 'outbox' or 'mailgun', got {self.MAIL_BACKEND!r}")
        if self.mail_backend == "mailgun" and not (self.MAILGUN_API_KEY and self.MAILGUN_DOMAIN):
            raise ConfigError("MAILGUN_API_KEY: MAIL_BACKEND=mailgun needs MAILGUN_API_KEY and MAILGUN_DOMAIN")
        if self.TRUSTED_PROXY_COUNT < 0:
            raise ConfigError("TRUSTED_PROXY_COUNT: must be 0 (no proxy) or the number of proxies in front")
        if self.SESSION_IDLE_MINUTES < 1 or self.SESSION_ABSOLUTE_HOURS < 1:
            raise ConfigError("SESSION_IDLE_MINUTES: session timeouts must be positive")
        if self.REVIEW_SWEEP_INTERVAL_MINUTES < 1:
            raise ConfigError("REVIEW_SWEEP_INTERVAL_MINUTES: must be a positive number of minutes")
        for sso in ("GOOGLE", "MICROSOFT"):
            if bool(getattr(self, f"{sso}_CLIENT_ID").strip()) != bool(getattr(self, f"{sso}_CLIENT_SECRET").strip()):
                raise ConfigError(f"{sso}_CLIENT_ID: set both {sso}_CLIENT_ID and {sso}_CLIENT_SECRET, or neither")
            if self.is_production and not getattr(self, f"{sso}_METADATA_URL").startswith("https://"):
                raise ConfigError(f"{sso}_METADATA_URL: must be an https:// URL in production")
        self._validate_connectwise_budget()
        if not self.is_production:
            return
        if self.mail_backend != "mailgun":
            raise ConfigError("MAIL_BACKEND: production sends mail through Mailgun (set MAIL_BACKEND=mailgun)")
        if not self.RATE_LIMITS_ENABLED:
            raise ConfigError("RATE_LIMITS_ENABLED: rate limits cannot be turned off in production")
        for name in self.REQUIRED_IN_PRODUCTION:
            # From the environment, a default does not count as set; for a Config built in code, its values do.
            given = env.get(name, "") if env is not None else getattr(self, name)
            if not str(given).strip():
                raise ConfigError(f"{name}: required in production but not set")
        if self.SECRET_KEY == _DEV_SECRET_KEY or len(self.SECRET_KEY) < 32:
            raise ConfigError("SECRET_KEY: must be at least 32 random characters in production")
        if self.ENCRYPTION_KEYS == _DEV_ENCRYPTION_KEYS:
            raise ConfigError("ENCRYPTION_KEYS: the development key cannot be used in production")
        if self.AUDIT_CHAIN_KEYS == _DEV_AUDIT_CHAIN_KEYS:
            raise ConfigError("AUDIT_CHAIN_KEYS: the development key cannot be used in production")
        if not self.BASE_URL.startswith("https://"):
            raise ConfigError("BASE_URL: must be an https:// URL in production")
        if not self.STRIPE_SECRET_KEY.startswith(("sk_", "rk_")):
            raise ConfigError("STRIPE_SECRET_KEY: must be a Stripe secret (sk_...) or restricted (rk_...) key")
        if not self.STRIPE_WEBHOOK_SECRET.startswith("whsec_"):
            raise ConfigError("STRIPE_WEBHOOK_SECRET: must be the endpoint's signing secret (whsec_...)")
        if not self.STRIPE_API_BASE.startswith("https://"):
            raise ConfigError("STRIPE_API_BASE: must be an https:// URL in production")
        if not self.DATABASE_URL.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ConfigError("DATABASE_URL: must be a postgresql:// URL")
