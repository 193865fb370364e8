"""Fixtures for the simulator's tests: a shared read-mostly simulator and fresh ones for knob tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cwsim import SimHandle, serve_in_thread

ACCEPT = "application/vnd.connectwise.com+json; version=2025.1"


def api_client(sim: SimHandle, **kwargs) -> httpx.Client:
    """An httpx client set up the way a real integration calls ConnectWise."""
    return httpx.Client(
        base_url=sim.api_url,
        auth=(f"{sim.company_id}+{sim.public_key}", sim.private_key),
        headers={"clientId": "cwsim-tests", "Accept": ACCEPT},
        timeout=10,
        **kwargs,
    )


@pytest.fixture(scope="session")
def sim() -> Iterator[SimHandle]:
    """Default-size data set; tests that PATCH must restore what they change."""
    handle = serve_in_thread(port=0)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def client(sim: SimHandle) -> Iterator[httpx.Client]:
    with api_client(sim) as c:
        yield c


@pytest.fixture()
def fresh_sim() -> Iterator[SimHandle]:
    """A small private simulator for tests that turn knobs or write."""
    handle = serve_in_thread(port=0, invoices=20)
    yield handle
    handle.stop()


@pytest.fixture()
def fresh_client(fresh_sim: SimHandle) -> Iterator[httpx.Client]:
    with api_client(fresh_sim) as c:
        yield c


def fetch_all(client: httpx.Client, path: str, **params) -> list[dict]:
    """Every record of a list endpoint, following pages of 1000."""
    out, page = [], 1
    while True:
        response = client.get(path, params={**params, "pageSize": 1000, "page": page})
        assert response.status_code == 200, response.text
        batch = response.json()
        out.extend(batch)
        if len(batch) < 1000:
            return out
        page += 1
