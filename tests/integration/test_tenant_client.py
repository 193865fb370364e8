"""One way to make a tenant's client (``app.connectwise.tenant_client``): member sync, the settings page's test and
the invoices pages all get the per-tenant API-base cache and the process's shared TLS context."""

from __future__ import annotations

from app.connectwise.members import run_sync
from tests.conftest import csrf_of
from tests.integration.invoice_helpers import connected_tenant


def _discoveries(sim, before: int) -> int:  # type: ignore[no-untyped-def]
    return len([r for r in sim.requests[before:] if r.path.startswith("/login/companyinfo/")])


def test_member_sync_uses_the_api_base_another_caller_already_discovered(app, client, make_tenant, sim, redis_conn):
    tenant = connected_tenant(client, make_tenant, sim)
    assert client.get("/invoices/").status_code == 200  # a page discovers the API base and remembers it
    assert redis_conn.keys(f"bi:cw:apibase:{tenant.id}:*")
    before = len(sim.requests)
    with app.app_context():
        run_sync(str(tenant.id))
    assert _discoveries(sim, before) == 0
    assert any(r.path.endswith("/system/members") for r in sim.requests[before:])


def test_the_settings_test_and_member_sync_share_one_discovery(app, client, make_tenant, sim, redis_conn):
    tenant = connected_tenant(client, make_tenant, sim)
    for key in redis_conn.keys(f"bi:cw:apibase:{tenant.id}:*"):
        redis_conn.delete(key)
    before = len(sim.requests)
    response = client.post("/settings/connectwise/test", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 200
    with app.app_context():
        run_sync(str(tenant.id))
    assert _discoveries(sim, before) == 1

