"""The shared services as one typed value, and the tenant hook that belongs to our session factory only."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db import make_session_factory, set_session_tenant
from app.services import Services, current_services, services_of

_TENANT_SETTING = text("select current_setting('app.tenant_id', true)")


def test_the_app_has_one_frozen_services_value_with_the_shared_objects(app):
    services = services_of(app)
    assert isinstance(services, Services)
    with app.app_context():
        assert current_services() is services
    assert services.config is app.config["BI"]
    for name in ("engine", "session_factory", "redis", "keyring", "errors"):
        assert app.extensions[name] is getattr(services, name), name
    with pytest.raises(dataclasses.FrozenInstanceError):
        services.redis = None  # type: ignore[misc]


def test_an_app_not_made_by_the_factory_has_no_services():
    with pytest.raises(RuntimeError, match="no services"):
        services_of(Flask("bare"))


def test_our_sessions_get_the_tenant_hook_and_a_plain_session_does_not(app, make_tenant):
    tenant = make_tenant()
    engine = services_of(app).engine
    ours = services_of(app).session_factory()
    try:
        set_session_tenant(ours, tenant.id)
        assert ours.execute(_TENANT_SETTING).scalar() == str(tenant.id)
    finally:
        ours.rollback()
        ours.close()
    plain = Session(bind=engine)
    try:
        # Someone else's session in the same process: our hook must not run for it, even with our info key set.
        plain.info["tenant_id"] = str(tenant.id)
        assert plain.execute(_TENANT_SETTING).scalar() in ("", None)
    finally:
        plain.rollback()
        plain.close()


def test_every_factory_we_make_carries_the_hook(app, make_tenant):
    tenant = make_tenant()
    factory = make_session_factory(services_of(app).engine)
    session = factory()
    try:
        set_session_tenant(session, tenant.id)
        assert session.execute(_TENANT_SETTING).scalar() == str(tenant.id)
    finally:
        session.rollback()
        session.close()


APP_DIR = Path(__file__).resolve().parents[2] / "app"
_SHARED = ("engine", "session_factory", "redis", "keyring", "errors", "connectwise_resolver", "audit_chain_keys")
_STRING_LOOKUP = re.compile(r"""extensions(\[|\.get\()\s*["'](""" + "|".join(_SHARED)
                            + r""")["']|config\[\s*["']BI["']\s*\]""")


def test_no_module_but_the_factory_looks_up_a_shared_service_by_string_key():
    found = [f"{path.relative_to(APP_DIR.parent)}:{number}" for path in sorted(APP_DIR.rglob("*.py"))
             if path != APP_DIR / "__init__.py"
             for number, line in enumerate(path.read_text().splitlines(), 1) if _STRING_LOOKUP.search(line)]
    assert found == []


def test_a_job_is_called_with_ids_and_runs_with_the_apps_services_first(app):
    from app.jobs.runtime import job

    seen: dict[str, object] = {}

    @job
    def probe(services: Services, tenant_id: str) -> str:
        seen["services"], seen["tenant_id"] = services, tenant_id
        return "ran"

    with app.app_context():
        assert probe("t-1") == "ran"
    assert seen == {"services": services_of(app), "tenant_id": "t-1"}
