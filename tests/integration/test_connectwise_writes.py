"""Writes through ``Client.patch`` against the simulator: retried only when the caller says the write is safe to
repeat, a write that may or may not have landed says so, and a write drops the tenant's cached reads it made
stale (the record's collection), for every client of the tenant, while other collections stay cached."""

from __future__ import annotations

import time

import pytest

from app.connectwise import errors
from app.connectwise.client import Client, Credentials

CLIENT_ID = "6f1b5c9e-0000-4000-8000-000000000001"
DESCRIPTION = [{"op": "replace", "path": "description", "value": "Edited by a reviewer"}]
APPROVED = [{"op": "replace", "path": "status", "value": {"id": 3}}]


def make(sim, **kwargs) -> Client:  # type: ignore[no-untyped-def]
    kwargs.setdefault("allow_loopback_http", True)
    kwargs.setdefault("sleep", lambda s: None)
    return Client(Credentials(sim.url, sim.company_id, sim.public_key, sim.private_key), CLIENT_ID, **kwargs)


def patches(sim, before: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.path for r in sim.requests[before:] if r.method == "PATCH"]


def settle(done) -> None:  # type: ignore[no-untyped-def]
    """Wait (at most 3 s) for the simulator to finish a request it was told to sit on."""
    for _ in range(30):
        if done():
            return
        time.sleep(0.1)


def first_product(sim, invoice_id: int = 3) -> dict:  # type: ignore[no-untyped-def]
    data = sim.state.data["products"]
    return next(p for p in (data.get(i) for i in data.ids()) if p["invoice"]["id"] == invoice_id)


@pytest.mark.parametrize("status", [503, 500])
def test_a_write_that_is_not_safe_to_repeat_is_not_retried_after_a_server_error(fresh_sim, status):
    product = first_product(fresh_sim)
    with make(fresh_sim, max_retries=3) as cw:
        assert cw.api_base
        before = len(fresh_sim.requests)
        fresh_sim.configure(error_next=1, error_status=status)
        with pytest.raises(errors.WriteUncertain, match="may or may not have been applied"):
            cw.patch(f"procurement/products/{product['id']}", DESCRIPTION)
    assert len(patches(fresh_sim, before)) == 1
    assert first_product(fresh_sim)["description"] == product["description"]


def test_a_write_the_caller_marks_idempotent_is_retried_after_a_server_error(fresh_sim):
    with make(fresh_sim, max_retries=3) as cw:
        assert cw.api_base
        before = len(fresh_sim.requests)
        fresh_sim.configure(error_next=1, error_status=503)
        body = cw.patch("finance/invoices/3", APPROVED, idempotent=True)
    assert body["status"]["id"] == 3
    assert len(patches(fresh_sim, before)) == 2


def test_a_timeout_after_sending_a_write_is_uncertain_and_not_retried(fresh_sim):
    product = first_product(fresh_sim)
    with make(fresh_sim, max_retries=3, timeout=0.3) as cw:
        assert cw.api_base
        before = len(fresh_sim.requests)
        fresh_sim.configure(timeout_next=1, timeout_seconds=0.8)
        with pytest.raises(errors.WriteUncertain, match="may or may not have been applied"):
            cw.patch(f"procurement/products/{product['id']}", DESCRIPTION)
    # ConnectWise carried on with it after we stopped waiting: exactly why the write is not sent again.
    settle(lambda: first_product(fresh_sim)["description"] == "Edited by a reviewer")
    assert first_product(fresh_sim)["description"] == "Edited by a reviewer"
    assert len(patches(fresh_sim, before)) == 1


def test_an_idempotent_write_that_timed_out_is_sent_again(fresh_sim):
    with make(fresh_sim, max_retries=3, timeout=0.3) as cw:
        assert cw.api_base
        before = len(fresh_sim.requests)
        fresh_sim.configure(timeout_next=1, timeout_seconds=0.8)
        assert cw.patch("finance/invoices/4", APPROVED, idempotent=True)["status"]["id"] == 3
    settle(lambda: len(patches(fresh_sim, before)) == 2)  # the first one lands once the simulator wakes up
    assert len(patches(fresh_sim, before)) == 2


def test_a_refused_write_is_a_plain_error_and_not_retried(fresh_sim):
    with make(fresh_sim, max_retries=3) as cw:
        assert cw.api_base
        before = len(fresh_sim.requests)
        with pytest.raises(errors.BadRequest):
            cw.patch("finance/invoices/3", [{"op": "replace", "path": "total", "value": 1}], idempotent=True)
    assert len(patches(fresh_sim, before)) == 1


def test_after_a_write_cached_reads_of_its_collection_see_the_new_value_in_every_client(fresh_sim, redis_conn):
    product = first_product(fresh_sim)
    lines = {"conditions": "invoice/id=3"}
    with make(fresh_sim, tenant_id="t-write", redis=redis_conn) as page, \
            make(fresh_sim, tenant_id="t-write", redis=redis_conn) as reviewer:
        assert page.get("procurement/products", lines)[0]["description"] == product["description"]
        assert page.get(f"procurement/products/{product['id']}")["description"] == product["description"]
        assert page.get("finance/invoices/3")["status"]["id"] != 3
        times = page.get_all("time/entries", conditions="invoice/id=3")
        reviewer.patch(f"procurement/products/{product['id']}", DESCRIPTION)
        reviewer.patch("finance/invoices/3", APPROVED, idempotent=True)
        made = page.requests_made
        assert page.get("procurement/products", lines)[0]["description"] == "Edited by a reviewer"
        assert page.get(f"procurement/products/{product['id']}")["description"] == "Edited by a reviewer"
        assert page.get("finance/invoices/3")["status"]["id"] == 3
        assert page.requests_made == made + 3
        assert page.get_all("time/entries", conditions="invoice/id=3") == times  # another collection: still cached
        assert page.requests_made == made + 3


def test_a_write_drops_the_further_collections_the_caller_names_and_only_its_own_tenants(fresh_sim, redis_conn):
    with make(fresh_sim, tenant_id="t-a", redis=redis_conn) as a, \
            make(fresh_sim, tenant_id="t-b", redis=redis_conn) as b:
        a.get("finance/invoices/3")
        b.get("time/entries", {"conditions": "invoice/id=4"})
        a.get("time/entries", {"conditions": "invoice/id=4"})
        entry = a.get("time/entries", {"conditions": "invoice/id=4"})[0]
        a.patch(f"time/entries/{entry['id']}", [{"op": "replace", "path": "notes", "value": "Reworded"}],
                stale=["finance/invoices"])
        made_a, made_b = a.requests_made, b.requests_made
        a.get("finance/invoices/3")
        b.get("time/entries", {"conditions": "invoice/id=4"})
    assert a.requests_made == made_a + 1  # the named collection was dropped too
    assert b.requests_made == made_b  # another tenant's cache is not this write's business
