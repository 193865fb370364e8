"""One tenant cannot starve the others or hang the web tier: request budgets per tenant inside a per-host valve
(in Redis), a page waits about a second and answers 503 with Retry-After, jobs still wait, and every call has an
overall deadline that a trickling server cannot stretch."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import cwsim
from app.connectwise import errors
from app.connectwise.client import Client, Credentials
from app.connectwise.connection import get_connection, make_client
from app.connectwise.ratelimit import BudgetExhausted, RequestBudget
from app.tenancy import tenant_session
from tests.integration.invoice_helpers import (  # noqa: F401 (fixtures)
    connected_tenant,
    htmx,
    make_link,
    sim_knobs_at_defaults,
)

CLIENT_ID = "6f1b5c9e-0000-4000-8000-000000000001"
INVOICE = 3


@pytest.fixture(scope="module")
def other_sim():  # type: ignore[no-untyped-def]
    """A second ConnectWise company on the same host (127.0.0.1), another port: another tenant of that host."""
    handle = cwsim.serve_in_thread(port=0, invoices=20, company_id="othermsp")
    yield handle
    handle.stop()


def client_for(sim, **kwargs) -> Client:  # type: ignore[no-untyped-def]
    kwargs.setdefault("allow_loopback_http", True)
    kwargs.setdefault("sleep", lambda s: None)
    return Client(Credentials(sim.url, sim.company_id, sim.public_key, sim.private_key), CLIENT_ID, **kwargs)


def test_a_tenant_that_spends_its_budget_does_not_block_another_tenant_on_the_same_site(redis_conn):
    budget = RequestBudget(redis_conn, limit=3, window=30, host_limit=100)
    site = "https://na.myconnectwise.net"
    for _ in range(3):
        budget.acquire(site, "msp-a", max_wait=0)
    with pytest.raises(BudgetExhausted) as refused:
        budget.acquire(site, "msp-a", max_wait=0)
    assert 1 <= refused.value.retry_after <= 30
    for _ in range(3):
        assert budget.acquire(site, "msp-b", max_wait=0) < 0.5
    keys = {k.decode() for k in redis_conn.keys("bi:cw:rate:*")}
    assert len([k for k in keys if k.startswith("bi:cw:rate:tenant:")]) == 2
    assert len([k for k in keys if k.startswith("bi:cw:rate:host:")]) == 1
    assert not any("myconnectwise" in k or "msp-" in k for k in keys)  # hashed names only


def test_the_client_spends_its_own_tenants_budget_not_the_sites(fresh_sim, redis_conn):
    budget = RequestBudget(redis_conn, limit=2, window=30, host_limit=100)
    with client_for(fresh_sim, rate_limiter=budget, max_wait=0.5) as a:
        a.count("finance/invoices")  # discovery + one read: A's two requests
        started = time.monotonic()
        with pytest.raises(errors.Busy, match="busy") as busy:
            a.count("company/companies")
        assert time.monotonic() - started < 1.0 and busy.value.retry_after >= 1
    # Another company on the same site still reaches ConnectWise (the simulator knows one company, so it answers
    # "no such company": an answer from ConnectWise, not our "busy").
    before = len(fresh_sim.requests)
    other = Client(Credentials(fresh_sim.url, "othermsp", "k", "s"), CLIENT_ID, allow_loopback_http=True,
                   rate_limiter=budget, max_wait=0.5, sleep=lambda s: None)
    with other, pytest.raises(errors.NotFound):
        other.api_base  # noqa: B018
    assert len(fresh_sim.requests) == before + 1


def test_the_host_valve_bounds_the_sum_of_all_tenants_on_one_host(fresh_sim, other_sim, redis_conn):
    budget = RequestBudget(redis_conn, limit=5, window=30, host_limit=7)
    with client_for(fresh_sim, rate_limiter=budget, max_wait=0.2) as a, \
            client_for(other_sim, rate_limiter=budget, max_wait=0.2) as b:
        for _ in range(4):
            a.count("finance/invoices")  # 5 requests with discovery: A's whole budget
        b.count("finance/invoices")  # 2 more: the host's 7
        with pytest.raises(errors.Busy):
            b.count("company/companies")  # B has budget left, the host does not
        with pytest.raises(errors.Busy):
            a.count("company/companies")
    sent = len(fresh_sim.requests) + len(other_sim.requests)
    assert sent == 7


def test_a_job_waits_for_a_slot_where_a_page_would_not(fresh_sim, redis_conn):
    budget = RequestBudget(redis_conn, limit=2, window=1.5, host_limit=100)
    with client_for(fresh_sim, rate_limiter=budget, max_wait=0.3) as page:
        page.count("finance/invoices")
        with pytest.raises(errors.Busy):
            page.count("finance/invoices")
    with client_for(fresh_sim, rate_limiter=budget, max_wait=30) as job:
        job.use_known_api_base(fresh_sim.api_url)
        started = time.monotonic()
        job.count("finance/invoices")
        job.count("company/companies")
        assert 0.5 < time.monotonic() - started < 5  # it waited for the window to move, then went ahead


def test_make_client_gives_pages_a_short_wait_and_jobs_a_long_one(app, client, make_tenant, sim):
    tenant = connected_tenant(client, make_tenant, sim)
    cfg = app.config["BI"]
    with app.app_context(), tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        conn = get_connection(session)
        page = make_client(conn, app.extensions["keyring"], cfg, app.extensions["redis"])
        job = make_client(conn, app.extensions["keyring"], cfg, app.extensions["redis"], for_job=True)
    assert page.max_wait == cfg.CONNECTWISE_PAGE_WAIT_SECONDS <= 1.5
    assert page.deadline == cfg.CONNECTWISE_PAGE_DEADLINE_SECONDS
    assert job.max_wait == cfg.CONNECTWISE_JOB_WAIT_SECONDS >= 60
    assert job.deadline == cfg.CONNECTWISE_JOB_DEADLINE_SECONDS > job.max_wait
    assert page.rate_limiter.host_limit == cfg.CONNECTWISE_HOST_MAX_REQUESTS_PER_MINUTE > cfg.CONNECTWISE_MAX_REQUESTS_PER_MINUTE
    page.close()
    job.close()


def _forget_connectwise_answers(app) -> None:  # type: ignore[no-untyped-def]
    """Drop the cached API base and responses (sessions stay): every render must ask ConnectWise."""
    redis = app.extensions["redis"]
    for key in list(redis.scan_iter("bi:cw:*")):
        redis.delete(key)


def _spend_budget(app, sim) -> None:  # type: ignore[no-untyped-def]
    """Use up the tenant's budget on the simulator's site and company, as a busy tenant would."""
    cfg = app.config["BI"]
    budget = RequestBudget(app.extensions["redis"], cfg.CONNECTWISE_MAX_REQUESTS_PER_MINUTE,
                           host_limit=cfg.CONNECTWISE_HOST_MAX_REQUESTS_PER_MINUTE)
    for _ in range(cfg.CONNECTWISE_MAX_REQUESTS_PER_MINUTE):
        budget.acquire(sim.url, sim.company_id, max_wait=0)


def test_a_public_page_waits_about_a_second_then_answers_busy_with_retry_after(app, client, make_tenant, sim,
                                                                               monkeypatch):
    connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    monkeypatch.setattr(app.config["BI"], "CONNECTWISE_MAX_REQUESTS_PER_MINUTE", 4)
    monkeypatch.setattr(app.config["BI"], "CONNECTWISE_CACHE_TTL_SECONDS", 0)
    _forget_connectwise_answers(app)
    _spend_budget(app, sim)
    started = time.monotonic()
    response = app.test_client().get(f"/i/{token}")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 2.5
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_signed_in_page_answers_busy_503_and_htmx_gets_a_toast(app, client, make_tenant, sim, monkeypatch):
    connected_tenant(client, make_tenant, sim)
    monkeypatch.setattr(app.config["BI"], "CONNECTWISE_MAX_REQUESTS_PER_MINUTE", 4)
    monkeypatch.setattr(app.config["BI"], "CONNECTWISE_CACHE_TTL_SECONDS", 0)
    _forget_connectwise_answers(app)
    _spend_budget(app, sim)
    started = time.monotonic()
    page = client.get("/invoices/")
    assert time.monotonic() - started < 2.5
    assert page.status_code == 503
    assert "ConnectWise is busy" in page.get_data(as_text=True)
    assert 1 <= int(page.headers["Retry-After"]) <= 60
    swap = client.get("/invoices/", headers=htmx(client))
    assert swap.status_code == 503 and swap.headers["HX-Retarget"] == "#toasts"
    assert "ConnectWise is busy" in swap.get_data(as_text=True) and "Retry-After" in swap.headers
    preview = client.get(f"/invoices/{INVOICE}")
    assert preview.status_code == 503 and "Retry-After" in preview.headers


def test_a_trickling_server_is_cut_off_at_the_calls_deadline(fresh_sim):
    with client_for(fresh_sim, timeout=5, deadline=1.5, max_retries=3) as cw:
        cw.api_base  # noqa: B018 (discovery before the trickle starts)
        fresh_sim.configure(trickle_next=5, trickle_interval=0.2)
        started = time.monotonic()
        with pytest.raises(errors.TimedOut, match="did not finish answering within 1.5 s"):
            cw.get_all("finance/invoices")
        assert time.monotonic() - started < 2.5  # one byte every 0.2 s never times a read out; the deadline does


def test_trickled_headers_are_cut_off_at_the_deadline_too():
    stop = threading.Event()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    port = server.getsockname()[1]

    def serve() -> None:  # a hostile peer: a status line, then one header byte every 0.1 s, for at most 30 s
        until = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < until:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    while not stop.is_set() and time.monotonic() < until:
                        conn.sendall(b"a")
                        time.sleep(0.1)
                except OSError:
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        cw = Client(Credentials(f"http://127.0.0.1:{port}", "acme", "p", "q"), CLIENT_ID, allow_loopback_http=True,
                    timeout=5, deadline=1.0, max_retries=3, sleep=lambda s: None)
        started = time.monotonic()
        with cw, pytest.raises(errors.TimedOut, match="within 1 s"):
            cw.api_base  # noqa: B018
        assert time.monotonic() - started < 2.0
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def test_retries_and_back_off_stop_at_the_deadline(fresh_sim):
    fresh_sim.configure(error_rate=1.0, error_status=502)
    with client_for(fresh_sim, deadline=1.0, max_retries=10, backoff_base=5.0, max_backoff=5.0,
                    sleep=time.sleep) as cw:
        started = time.monotonic()
        with pytest.raises(errors.Unavailable, match="502"):
            cw.api_base  # noqa: B018 (discovery is not faulted)
            cw.count("finance/invoices")
        assert time.monotonic() - started < 1.5  # no 5 s back-off past a 1 s deadline
    assert len([r for r in fresh_sim.requests if "/count" in r.path]) == 1
