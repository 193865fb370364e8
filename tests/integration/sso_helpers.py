"""Driving an SSO sign-in against the local OpenID providers, for tests outside ``test_sso_sign_in.py``."""

from __future__ import annotations

import uuid
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from app.tenancy import tenant_session
from app.users.models import User
from tests.conftest import csrf_of
from tests.oidc_fixtures import follow_provider


@pytest.fixture()
def sso_app(config, oidc_provider, redis_conn):  # type: ignore[no-untyped-def]
    """The app with Google and Microsoft sign-in pointed at the local providers."""
    from app import create_app

    application = create_app(replace(config, **oidc_provider.config_values()))
    yield application
    application.extensions["engine"].dispose()


def add_user(app, tenant, email: str, role: str = "reviewer") -> uuid.UUID:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        user = User(id=uuid.uuid4(), tenant_id=tenant.id, email=email.lower(), name="", role=role, active=True)
        s.add(user)
        return user.id


def sso(client, provider: str, hint: str):  # type: ignore[no-untyped-def]
    """The app's answer to the provider's redirect back, after signing in as the ``hint`` account there."""
    response = client.get(f"/sign-in/sso/{provider}?login_hint={hint}")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    back = urlsplit(follow_provider(response.headers["Location"]))
    return client.get(f"{back.path}?{back.query}")


def into(client, response, tenant):  # type: ignore[no-untyped-def]
    """Follow a sign-in into ``tenant``: straight in, or through the chooser."""
    if response.headers.get("Location") == "/sign-in/choose":
        response = client.post("/sign-in/choose", data={"tenant_id": str(tenant.id), "csrf_token": csrf_of(client)})
    return response
