"""Integration fixtures shared by the ConnectWise tests: one in-process simulator for the session."""

from __future__ import annotations

import pytest

SIM_INVOICES = 500  # enough that time entries span two pages of 1,000


@pytest.fixture(scope="session")
def sim():  # type: ignore[no-untyped-def]
    import cwsim

    handle = cwsim.serve_in_thread(port=0, invoices=SIM_INVOICES)
    yield handle
    handle.stop()


@pytest.fixture()
def fresh_sim(sim):  # type: ignore[no-untyped-def]
    """Knobs back to defaults and data rebuilt, so no test sees another's faults or edits."""
    sim.reset()
    sim.configure(invoices=SIM_INVOICES)
    sim.reset(keep_config=True)
    return sim
