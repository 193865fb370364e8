"""Config from the environment; production refuses to start without its secrets."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Config, ConfigError

GOOD = {
    "APP_ENV": "production",
    "SECRET_KEY": "s" * 48,
    "DATABASE_URL": "postgresql://bi_web:pw@db.internal/betterinvoice",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "ENCRYPTION_KEYS": "p1:" + base64.b64encode(os.urandom(32)).decode(),
    "AUDIT_CHAIN_KEYS": "a1:" + base64.b64encode(os.urandom(32)).decode(),
    "BASE_URL": "https://app.betterinvoice.example",
    "CONNECTWISE_CLIENT_ID": "6f1b5c9e-0000-4000-8000-000000000001",
    "MAILGUN_API_KEY": "key-" + "m" * 32,
    "MAILGUN_DOMAIN": "mg.betterinvoice.example",
    "MAILGUN_WEBHOOK_SIGNING_KEY": "whk-" + "w" * 32,
    "STRIPE_SECRET_KEY": "sk_live_" + "s" * 24,
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "h" * 32,
    "STRIPE_PRICE_PRO_MONTHLY": "price_1ProMonthly",
    "STRIPE_PRICE_PRO_YEARLY": "price_1ProYearly",
    "TRUSTED_PROXY_COUNT": "1",
}


def test_a_complete_production_environment_is_accepted():
    cfg = Config.from_env(GOOD)
    assert cfg.is_production and cfg.SECRET_KEY == GOOD["SECRET_KEY"]


@pytest.mark.parametrize("missing", sorted(Config.REQUIRED_IN_PRODUCTION))
def test_missing_production_secret_stops_start_up_naming_the_variable(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Config.from_env(env)


@pytest.mark.parametrize("name,value", [
    ("SECRET_KEY", "short"),
    ("ENCRYPTION_KEYS", "p1:abc"),
    ("BASE_URL", "http://insecure.example"),
    ("DATABASE_URL", "mysql://x"),
    ("APP_ENV", "staging"),
    ("TRUSTED_PROXY_COUNT", "two"),
    ("STRIPE_SECRET_KEY", "pk_live_publishable_is_not_secret"),
    ("STRIPE_WEBHOOK_SECRET", "not-a-signing-secret"),
    ("STRIPE_API_BASE", "http://localstripe.example"),
])
def test_malformed_settings_are_refused_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Config.from_env({**GOOD, name: value})


def test_production_app_refuses_to_start_from_the_command_line_without_a_secret():
    env = {k: v for k, v in GOOD.items() if k != "SECRET_KEY"}
    env["PATH"] = os.environ.get("PATH", "")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=root, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_no_app_env_refuses_to_start_instead_of_running_as_development():
    with pytest.raises(ConfigError, match="APP_ENV"):
        Config.from_env({})
    with pytest.raises(ConfigError, match="APP_ENV"):
        Config.from_env({"APP_ENV": " "})


def test_development_defaults_work_with_only_app_env():
    cfg = Config.from_env({"APP_ENV": "development"})
    assert cfg.APP_ENV == "development" and cfg.TRUSTED_PROXY_COUNT == 0


def test_production_needs_trusted_proxy_count_written_even_when_zero():
    env = {k: v for k, v in GOOD.items() if k != "TRUSTED_PROXY_COUNT"}
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_COUNT"):
        Config.from_env(env)
    assert Config.from_env({**env, "TRUSTED_PROXY_COUNT": "0"}).TRUSTED_PROXY_COUNT == 0
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_COUNT"):
        Config.from_env({**env, "TRUSTED_PROXY_COUNT": "-1"})


def test_production_refuses_the_local_outbox_and_disabled_rate_limits():
    with pytest.raises(ConfigError, match="MAIL_BACKEND"):
        Config.from_env({**GOOD, "MAIL_BACKEND": "outbox"})
    with pytest.raises(ConfigError, match="RATE_LIMITS_ENABLED"):
        Config.from_env({**GOOD, "RATE_LIMITS_ENABLED": "false"})


def test_boolean_settings_parse_false_as_false():
    cfg = Config.from_env({"APP_ENV": "development", "RATE_LIMITS_ENABLED": "false"})
    assert cfg.RATE_LIMITS_ENABLED is False
    with pytest.raises(ConfigError, match="RATE_LIMITS_ENABLED"):
        Config.from_env({"APP_ENV": "development", "RATE_LIMITS_ENABLED": "maybe"})
