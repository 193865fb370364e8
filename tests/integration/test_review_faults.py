"""Review under faults and undo: a 429 wall and a timeout mid-sweep fail the sweep with its reason and leave the
previous snapshots and flags exactly as they were (the 5xx storm, malformed JSON and revoked keys are in
test_review_sweep); undoing "Mark as OK" is audited and the flag counts as open again; an invoice that could not
be checked is listed with its reason on the rule settings page and counted on /review/."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest
from sqlalchemy import select

from app.audit.log import Actor
from app.audit.models import AuditEntry
from app.review.flags import mark_ok, open_flags
from app.review.models import ReviewInvoice
from app.services import services_of
from app.tenancy import tenant_session
from tests.conftest import sign_in
from tests.integration.invoice_helpers import (  # noqa: F401 - sim_knobs_at_defaults is an autouse fixture
    add_user,
    connected_tenant,
    rebuild_afterwards,
    sim_knobs_at_defaults,
)
from tests.integration.test_review_sweep import (
    FAST,
    MARK,
    a_product_on_an_open_invoice,
    cw,
    review_state,
    sweep,
    sweeps_of,
)

RETRIES = FAST["max_retries"]
CLIENT_TIMEOUT = 0.25  # seconds; the simulator's latency below is well above it
LATENCY_MS = 1000


class FaultAfter(httpx.BaseTransport):
    """Real HTTP to the simulator; after ``n`` requests the simulator turns ``knobs`` on (a fault mid-sweep)."""

    def __init__(self, sim, n: int, **knobs):  # type: ignore[no-untyped-def]
        self.sim, self.n, self.knobs, self.inner = sim, n, knobs, httpx.HTTPTransport()
        self.lock, self.faulted_at = threading.Lock(), None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.n -= 1
            if self.n < 0 and self.faulted_at is None:
                self.faulted_at = len(self.sim.requests)
                self.sim.configure(**self.knobs)
        return self.inner.handle_request(request)


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Review Faults Co")


def flagged_and_swept(app, tenant, sim, request) -> dict:  # type: ignore[no-untyped-def]
    """A sweep that raised one flag, then a change upstream a good sweep would pick up (so a half-written sweep
    would show); returns the product flagged."""
    rebuild_afterwards(request, sim)
    product = a_product_on_an_open_invoice(sim)
    with cw(sim) as api:
        api.patch(f"procurement/products/{product['id']}",
                  [{"op": "replace", "path": "description", "value": f"Router {MARK}"}])
    assert sweep(app, tenant).flags_raised == 1
    sim.state.data["products"].set_fields(product["id"], {"description": "Router fixed"})
    return product


def test_a_429_wall_mid_sweep_fails_it_once_the_retries_give_up_and_leaves_snapshots_and_flags_intact(
        app, tenant, sim, request):
    flagged_and_swept(app, tenant, sim, request)
    before = review_state(app, tenant)
    # The statuses and the invoice list answer; then every request is refused with 429 and a Retry-After.
    wall = FaultAfter(sim, 2, budget=0, budget_window=3)
    result = sweep(app, tenant, transport=wall)
    assert result.outcome == "failed"
    assert result.reason == "ConnectWise could not be read: ConnectWise is throttling our requests; try again in a minute"
    assert wall.faulted_at is not None
    walled = sim.requests[wall.faulted_at:]
    assert walled and {r.status for r in walled} == {429}
    # Each refused call was tried once and retried RETRIES times (Retry-After honoured, the sleep skipped), no more.
    tries = Counter((r.path, r.query) for r in walled)
    assert set(tries.values()) == {1 + RETRIES}
    assert review_state(app, tenant) == before
    last = sweeps_of(app, tenant)[-1]
    assert (last.outcome, last.reason, last.invoices_changed, last.failures) == ("failed", result.reason, 0, [])
    assert last.finished_at is not None and last.cw_requests == result.cw_requests >= 2 + len(walled)


def test_a_timeout_mid_sweep_fails_it_with_the_reason_and_leaves_snapshots_and_flags_intact(app, tenant, sim,
                                                                                            request):
    flagged_and_swept(app, tenant, sim, request)
    before = review_state(app, tenant)
    slow = FaultAfter(sim, 2, latency_ms=LATENCY_MS)
    result = sweep(app, tenant, transport=slow, timeout=CLIENT_TIMEOUT)
    sim.configure(latency_ms=0)
    assert result.outcome == "failed"
    assert result.reason == f"ConnectWise could not be read: ConnectWise did not answer within {CLIENT_TIMEOUT:g} s"
    assert result.seconds < 5, "the client gave up after its timeout and retries, not the simulator's latency"
    assert review_state(app, tenant) == before
    last = sweeps_of(app, tenant)[-1]
    assert (last.outcome, last.reason, last.invoices_changed, last.failures) == ("failed", result.reason, 0, [])
    assert last.finished_at is not None and last.cw_requests > 2


def open_count(app, tenant, invoice_id: int) -> int:  # type: ignore[no-untyped-def]
    """The invoice's open flags as the inbox counts them (neither cleared nor marked OK)."""
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        row = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == invoice_id)).scalar_one()
        return row.open_flags


def test_undoing_mark_as_ok_is_audited_and_the_flag_counts_as_open_again(app, tenant, sim, request):
    product = flagged_and_swept(app, tenant, sim, request)
    sim.state.data["products"].set_fields(product["id"], {"description": f"Router {MARK}"})  # still flagged
    invoice_id = product["invoice"]["id"]
    services = services_of(app)
    actor = Actor.user(tenant.owner_id, tenant.owner_email)
    with tenant_session(tenant.id, services.session_factory) as session:
        [flag] = open_flags(session, services.keyring)
        assert mark_ok(session, tenant.id, flag.id, actor, tenant.owner_id) is not None
    assert open_count(app, tenant, invoice_id) == 0
    with tenant_session(tenant.id, services.session_factory) as session:
        assert mark_ok(session, tenant.id, flag.id, actor, tenant.owner_id, ok=False) is not None
    with tenant_session(tenant.id, services.session_factory) as session:
        [again] = open_flags(session, services.keyring)
        assert (again.id, again.marked_ok, again.marked_ok_by, again.marked_ok_at) == (flag.id, False, None, None)
        entries = session.execute(select(AuditEntry).where(AuditEntry.target_id == str(flag.id))
                                  .order_by(AuditEntry.id)).scalars().all()
    assert [e.action for e in entries] == ["review.flag_marked_ok", "review.flag_unmarked"]
    undo = entries[-1]
    assert (undo.actor_id, undo.target_type) == (str(tenant.owner_id), "flag")
    assert undo.after == {"invoice_id": invoice_id, "rule": "marked_product", "target_type": "product",
                          "target_id": product["id"]}
    assert open_count(app, tenant, invoice_id) == 1
    # The next sweep finds the problem still there: the same flag, open and unmarked (the undo holds).
    result = sweep(app, tenant)
    assert (result.flags_raised, result.flags_cleared) == (0, 0)
    with tenant_session(tenant.id, services.session_factory) as session:
        [kept] = open_flags(session, services.keyring)
        assert (kept.id, kept.marked_ok) == (flag.id, False)
    assert open_count(app, tenant, invoice_id) == 1


def test_an_invoice_the_sweep_could_not_check_is_listed_with_its_reason_and_counted_on_the_review_page(
        app, client, tenant, sim, request):
    rebuild_afterwards(request, sim)
    assert sweep(app, tenant).outcome == "ok"
    product = a_product_on_an_open_invoice(sim)
    number = sim.state.data["invoices"].get(product["invoice"]["id"])["invoiceNumber"]
    price = product["price"]
    sim.state.data["products"].set_fields(product["id"], {"price": "XYZZY-42"})
    result = sweep(app, tenant)
    assert result.outcome == "ok" and result.invoices_failed == 1
    anchor = f"sweep-failures-{result.sweep_id}"
    review = client.get("/review/").get_data(as_text=True)
    assert (f'<a href="/settings/review/#{anchor}">1 invoice could not be checked in the last sweep</a>'
            in review)
    settings = client.get("/settings/review/").get_data(as_text=True)
    start = settings.index(f'id="{anchor}"')
    row = settings[start:settings.index("</tr>", start)]
    assert "1 invoice could not be checked" in row
    assert f'<a href="/invoices/{product["invoice"]["id"]}">{number}</a>: ' in row
    [failure] = result.failures
    assert failure["reason"] in row and "price" in failure["reason"]
    assert "XYZZY" not in settings and "XYZZY" not in review  # a reason names the field, never the value
    # Someone who may not open the rule settings reads the count without a link to them.
    viewer = add_user(app, tenant, "viewer")
    sign_in(client, tenant, viewer)
    seen = client.get("/review/").get_data(as_text=True)
    assert "1 invoice could not be checked in the last sweep" in seen and f"#{anchor}" not in seen
    # Fixed upstream: the next sweep checks it, and the line goes.
    sim.state.data["products"].set_fields(product["id"], {"price": price})
    assert sweep(app, tenant).invoices_failed == 0
    assert "could not be checked" not in client.get("/review/").get_data(as_text=True)
