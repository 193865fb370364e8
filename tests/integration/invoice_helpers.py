"""Shared steps of the invoices, branding and public-link tests: a tenant connected to the simulator, a link."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from app.tenancy import tenant_session
from app.users.models import User
from tests.conftest import TenantInfo, csrf_of, sign_in

AT = chr(64)
TOKEN_IN_URL = re.compile(r"/i/([A-Za-z0-9_-]{32,64})")


def connect(client, sim) -> None:  # type: ignore[no-untyped-def]
    """Save the simulator as the signed-in tenant's ConnectWise connection (the settings form, as a person would)."""
    data = {"site": sim.url, "company_id": sim.company_id, "public_key": sim.public_key,
            "private_key": sim.private_key, "csrf_token": csrf_of(client)}
    response = client.post("/settings/connectwise/", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def connected_tenant(client, make_tenant, sim, name: str = "Acme IT") -> TenantInfo:  # type: ignore[no-untyped-def]
    tenant = make_tenant(name)
    sign_in(client, tenant)
    connect(client, sim)
    return tenant


def add_user(app, tenant: TenantInfo, role: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    user_id = uuid.uuid4()
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.add(User(id=user_id, tenant_id=tenant.id, email=f"{role}-{user_id.hex[:6]}{AT}example.com",
                         role=role))
    return user_id


def user_of(app, tenant: TenantInfo, user_id: uuid.UUID) -> User:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        return session.execute(select(User).where(User.id == user_id)).scalar_one()


def htmx(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"HX-Request": "true", "X-CSRF-Token": csrf_of(client)}


def make_link(client, invoice_id: int, expires_days: str = "") -> str:  # type: ignore[no-untyped-def]
    """Create a public link from the invoice's links panel; returns the token shown (once)."""
    response = client.post(f"/invoices/{invoice_id}/links", data={"expires_days": expires_days},
                           headers=htmx(client))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    match = TOKEN_IN_URL.search(response.get_data(as_text=True))
    assert match, "the new link's URL is shown"
    return match.group(1)


KNOB_DEFAULTS = {"latency_ms": 0.0, "budget": None, "error_rate": 0.0, "error_next": 0, "timeout_next": 0,
                 "malformed_next": 0, "revoked": False, "forbidden": "", "forbidden_writes": "",
                 "write_refusal_next": 0}


@pytest.fixture(autouse=True)
def sim_knobs_at_defaults(sim):  # type: ignore[no-untyped-def]
    """Faults another test left switched on must not leak into this one (cheap: no data rebuild)."""
    sim.configure(**KNOB_DEFAULTS)
    yield
    sim.configure(**KNOB_DEFAULTS)


def rebuild_afterwards(request, sim) -> None:  # type: ignore[no-untyped-def]
    """For a test that changes the simulator's data: rebuild it afterwards so later tests see the seed again."""
    request.addfinalizer(sim.reset)
