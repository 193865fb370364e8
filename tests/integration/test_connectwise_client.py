"""The ConnectWise client against the simulator: discovery, auth, paging, retries, errors, cache, ceiling."""

from __future__ import annotations

import time

import httpx
import pytest

from app.connectwise import errors
from app.connectwise.client import Client, Credentials, normalise_site
from app.connectwise.lines import lines_for_invoices
from app.connectwise.ratelimit import SiteRateLimiter
from bench.cw_requests import lines_naively

CLIENT_ID = "6f1b5c9e-0000-4000-8000-000000000001"


def make(sim, **kwargs) -> Client:  # type: ignore[no-untyped-def]
    creds = Credentials(sim.url, sim.company_id, kwargs.pop("public", sim.public_key),
                        kwargs.pop("private", sim.private_key))
    kwargs.setdefault("allow_loopback_http", True)
    kwargs.setdefault("sleep", lambda s: None)
    return Client(creds, CLIENT_ID, **kwargs)


def test_base_url_is_discovered_from_companyinfo(fresh_sim):
    with make(fresh_sim) as cw:
        assert cw.api_base == f"{fresh_sim.url}/v2025_1/apis/3.0"


def test_cloud_sites_get_the_api_prefix_when_the_codebase_is_versioned():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "na.myconnectwise.net"
        return httpx.Response(200, json={"Codebase": "v2025_1/", "CompanyID": "acme"})

    cw = Client(Credentials("na.myconnectwise.net", "acme", "p", "q"), CLIENT_ID,
                transport=httpx.MockTransport(handler))
    assert cw.api_base == "https://api-na.myconnectwise.net/v2025_1/apis/3.0"


@pytest.mark.parametrize("site", ["http://na.myconnectwise.net", "http://10.1.2.3:8080"])
def test_a_plain_http_site_that_is_not_loopback_is_refused(site):
    with pytest.raises(errors.InsecureSite, match="HTTPS"):
        normalise_site(site, allow_loopback_http=True)


def test_loopback_http_is_refused_in_production_mode():
    with pytest.raises(errors.InsecureSite):
        normalise_site("http://127.0.0.1:8000", allow_loopback_http=False)


def test_sites_are_normalised_from_what_people_type():
    assert normalise_site("NA.myconnectwise.net/", False) == "https://na.myconnectwise.net"
    with pytest.raises(errors.InvalidSite):
        normalise_site("https://na.myconnectwise.net/v4_6_release/apis", False)


def test_every_request_sends_basic_auth_client_id_and_a_pinned_version(fresh_sim):
    seen = []

    class Spy(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.headers)
            return super().handle_request(request)

    with make(fresh_sim, transport=Spy()) as cw:
        cw.count("finance/invoices")
    api = seen[-1]
    assert api["authorization"].startswith("Basic ") and api["clientid"] == CLIENT_ID
    assert "version=2025.1" in api["accept"]


def test_wrong_keys_raise_an_actionable_auth_error(fresh_sim):
    with make(fresh_sim, private="wrong") as cw, pytest.raises(errors.AuthRefused, match="refused the API keys"):
        cw.get("system/info")
    assert fresh_sim.requests[-1].status == 401


def test_get_all_follows_paging_with_1000_per_page(fresh_sim):
    with make(fresh_sim) as cw:
        total = cw.count("time/entries")
        entries = cw.get_all("time/entries", fields=["id"])
    assert len(entries) == total > 1000
    pages = [r for r in fresh_sim.requests if r.path.endswith("/time/entries")]
    assert len(pages) == -(-total // 1000)
    assert all("pageSize=1000" in r.query for r in pages)


def test_5xx_is_retried_then_succeeds_without_retrying_4xx(fresh_sim):
    fresh_sim.configure(error_next=2, error_status=503)
    with make(fresh_sim) as cw:
        assert cw.count("finance/invoices") > 0
    statuses = [r.status for r in fresh_sim.requests if "/count" in r.path]
    assert statuses == [503, 503, 200]
    fresh_sim.configure(error_next=0)
    with make(fresh_sim) as cw, pytest.raises(errors.NotFound):
        cw.get("finance/invoices/999999999")
    assert len([r for r in fresh_sim.requests if "999999999" in r.path]) == 1


def test_a_5xx_storm_gives_up_after_bounded_retries(fresh_sim):
    fresh_sim.configure(error_rate=1.0, error_status=502)
    with make(fresh_sim, max_retries=3) as cw, pytest.raises(errors.Unavailable, match="502"):
        cw.count("finance/invoices")
    assert len([r for r in fresh_sim.requests if "/count" in r.path]) == 4


def test_429_honours_retry_after(fresh_sim):
    slept: list[float] = []
    fresh_sim.configure(budget=1, budget_window=60)
    with make(fresh_sim, sleep=slept.append, max_retries=2) as cw:
        cw.count("finance/invoices")
        with pytest.raises(errors.Throttled, match="throttling"):
            cw.count("company/companies")
    throttled = [r for r in fresh_sim.requests if r.status == 429]
    assert len(throttled) == 3 and len(slept) == 2
    assert all(s >= 1 for s in slept)  # the simulator's Retry-After, not our short back-off


def test_a_timeout_becomes_a_readable_error(fresh_sim):
    fresh_sim.configure(timeout_next=5, timeout_seconds=2)
    with make(fresh_sim, timeout=0.5, max_retries=1) as cw:
        cw.api_base  # noqa: B018 (discovery before the timeouts start)
        with pytest.raises(errors.TimedOut, match="did not answer within 0.5 s"):
            cw.count("finance/invoices")


def test_malformed_json_is_retried_then_reported(fresh_sim):
    with make(fresh_sim, max_retries=1) as cw:
        cw.api_base  # noqa: B018
        fresh_sim.configure(malformed_next=5)
        with pytest.raises(errors.MalformedResponse, match="not valid JSON"):
            cw.get("finance/invoices")


def test_a_missing_permission_names_the_module():
    def handler(request: httpx.Request) -> httpx.Response:
        if "companyinfo" in request.url.path:
            return httpx.Response(200, json={"Codebase": "v4_6_release/"})
        return httpx.Response(403, json={"code": "Forbidden", "message": "no"})

    cw = Client(Credentials("cw.example.com", "acme", "p", "q"), CLIENT_ID, transport=httpx.MockTransport(handler))
    with pytest.raises(errors.PermissionMissing, match="Finance › Invoicing"):
        cw.count("finance/invoices")


def test_cache_serves_repeat_reads_per_tenant_and_never_across_tenants(fresh_sim, redis_conn):
    with make(fresh_sim, tenant_id="tenant-a", redis=redis_conn) as a1:
        first = a1.get("finance/invoices", {"pageSize": 5})
    before = len(fresh_sim.requests)
    with make(fresh_sim, tenant_id="tenant-a", redis=redis_conn) as a2:
        assert a2.get("finance/invoices", {"pageSize": 5}) == first
        a2.api_base  # noqa: B018
    assert len([r for r in fresh_sim.requests[before:] if r.path.endswith("/finance/invoices")]) == 0
    with make(fresh_sim, tenant_id="tenant-b", redis=redis_conn) as b:
        b.get("finance/invoices", {"pageSize": 5})
    assert len([r for r in fresh_sim.requests[before:] if r.path.endswith("/finance/invoices")]) == 1
    keys = [k.decode() for k in redis_conn.keys("bi:cw:cache:*")]
    assert any(":tenant-a:" in k for k in keys) and any(":tenant-b:" in k for k in keys)
    assert all(0 < redis_conn.ttl(k) <= 60 for k in keys)


def test_cache_entries_expire(fresh_sim, redis_conn):
    with make(fresh_sim, tenant_id="tenant-x", redis=redis_conn, cache_ttl=1) as cw:
        cw.get("finance/billingStatuses")
        time.sleep(1.2)
        before = len(fresh_sim.requests)
        cw.get("finance/billingStatuses")
    assert len(fresh_sim.requests) == before + 1


def test_line_items_for_many_invoices_take_few_requests_and_match_the_naive_way(fresh_sim):
    with make(fresh_sim) as cw:
        ids = [inv["id"] for inv in cw.get_all("finance/invoices", fields=["id"])][:100]
        start = cw.requests_made
        batched = lines_for_invoices(cw, ids)
        batched_requests = cw.requests_made - start
        start = cw.requests_made
        naive = lines_naively(cw, ids)
        naive_requests = cw.requests_made - start
    assert batched_requests <= 6
    assert naive_requests == 300
    for invoice_id in ids:
        assert sorted(batched[invoice_id], key=lambda x: (x.kind, x.id)) == \
            sorted(naive.get(invoice_id, []), key=lambda x: (x.kind, x.id))


def test_the_site_ceiling_holds_across_clients(fresh_sim, redis_conn):
    limiter = SiteRateLimiter(redis_conn, limit=5, window=2, max_wait=10)
    start = time.monotonic()
    with make(fresh_sim, rate_limiter=limiter) as c1, make(fresh_sim, rate_limiter=limiter) as c2:
        for _ in range(4):
            c1.count("finance/invoices")
            c2.count("finance/invoices")
    elapsed = time.monotonic() - start
    assert elapsed >= 2.0  # 10 requests at 5 per 2 s cannot finish in under one window


def test_credentials_never_appear_in_repr():
    creds = Credentials("https://x", "acme", "PUBLICKEY", "PRIVATEKEY")
    assert "PRIVATEKEY" not in repr(creds) and "PUBLICKEY" not in repr(creds)


def test_every_call_is_traced_with_endpoint_and_status_and_never_the_credentials(fresh_sim):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from app.observability.tracing import add_span_processor

    memory = InMemorySpanExporter()
    add_span_processor(SimpleSpanProcessor(memory))
    with make(fresh_sim) as cw:
        cw.get("finance/invoices/3")
    spans = [s for s in memory.get_finished_spans() if s.name.startswith("connectwise ")]
    assert any(s.attributes["connectwise.endpoint"] == "finance/invoices/{id}" and
               s.attributes["http.response.status_code"] == 200 for s in spans)
    dump = str([(s.name, dict(s.attributes)) for s in memory.get_finished_spans()])
    assert fresh_sim.private_key not in dump and fresh_sim.public_key not in dump
    assert "Basic " not in dump


class _CountingRedis:
    """The real Redis, counting the SETs of the connection-state key (to see how often a call writes it)."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real, self.health_sets = real, 0

    def set(self, key, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(key).startswith("bi:cw:health:"):
            self.health_sets += 1
        return self.real.set(key, *args, **kwargs)

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.real, name)


def test_each_call_records_the_connection_state_cheaply_and_a_failure_at_once(fresh_sim, redis_conn):
    import uuid

    from app.connectwise import health

    tenant = str(uuid.uuid4())
    redis = _CountingRedis(redis_conn)
    with make(fresh_sim, tenant_id=tenant, redis=redis, note_health=True) as cw:
        for n in range(10):
            cw.get("system/info", {"n": n}, cache=False)
        assert health.last(redis_conn, tenant).ok and redis.health_sets == 1  # ten answers, one write
        with pytest.raises(errors.NotFound):
            cw.get("finance/invoices/999999", cache=False)
        assert health.last(redis_conn, tenant).ok  # a missing record is an answer, not a broken connection
        fresh_sim.configure(revoked=True)
        with pytest.raises(errors.AuthRefused):
            cw.get("system/info", cache=False)
        broken = health.last(redis_conn, tenant)
        assert not broken.ok and "refused the API keys" in broken.detail
        fresh_sim.configure(revoked=False)
        cw.get("system/info", cache=False)
        assert health.last(redis_conn, tenant).ok  # answering again is written at once, not after the interval
    with make(fresh_sim, tenant_id=str(uuid.uuid4()), redis=redis_conn) as other:  # not the tenant's own client
        other.get("system/info", cache=False)
        assert health.last(redis_conn, other.tenant_id) is None
