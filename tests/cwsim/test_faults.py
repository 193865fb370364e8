"""Knobs for tests and benchmarks: latency, budget/429, injected 5xx, timeouts, malformed JSON, revoked keys,
the request log, and the loopback-only control API."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from cwsim import serve_in_thread
from tests.cwsim.conftest import api_client


def test_budget_exceeded_answers_429_with_retry_after_and_the_throttling_body(fresh_sim, fresh_client):
    fresh_sim.configure(budget=3, budget_window=30)
    statuses = [fresh_client.get("/system/info").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = fresh_client.get("/system/info")
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    body = response.json()
    assert body["error"] == "ConnectWiseAPI"
    assert body["message"].startswith("Too many requests. Please try again in ")


def test_budget_frees_up_after_the_window(fresh_sim, fresh_client):
    fresh_sim.configure(budget=1, budget_window=0.3)
    assert fresh_client.get("/system/info").status_code == 200
    assert fresh_client.get("/system/info").status_code == 429
    time.sleep(0.35)
    assert fresh_client.get("/system/info").status_code == 200


def test_a_budget_of_zero_is_a_wall_every_request_answers_429_with_retry_after(fresh_sim, fresh_client):
    fresh_sim.configure(budget=0, budget_window=7)
    responses = [fresh_client.get("/system/info") for _ in range(3)]
    assert [r.status_code for r in responses] == [429, 429, 429]
    assert {r.headers["Retry-After"] for r in responses} == {"7"}


def test_budget_is_settable_from_options():
    with serve_in_thread(invoices=5, budget=1) as sim, api_client(sim) as client:
        assert [client.get("/system/info").status_code for _ in range(2)] == [200, 429]


def test_error_next_injects_that_many_server_errors(fresh_sim, fresh_client):
    fresh_sim.configure(error_next=2, error_status=503)
    statuses = [fresh_client.get("/system/info").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_error_rate_one_fails_every_request_and_zero_none(fresh_sim, fresh_client):
    fresh_sim.configure(error_rate=1.0)
    response = fresh_client.get("/finance/invoices")
    assert response.status_code == 500
    assert response.json()["code"] == "ConnectWiseApi"
    fresh_sim.configure(error_rate=0.0)
    assert fresh_client.get("/finance/invoices").status_code == 200


def test_error_rate_is_a_fraction_of_requests(fresh_sim, fresh_client):
    fresh_sim.configure(error_rate=0.5)
    failures = sum(fresh_client.get("/system/info").status_code == 500 for _ in range(60))
    assert 10 < failures < 50


def test_malformed_next_truncates_json_bodies(fresh_sim, fresh_client):
    fresh_sim.configure(malformed_next=1)
    response = fresh_client.get("/finance/invoices")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert fresh_client.get("/finance/invoices").json()


def test_latency_delays_each_request(fresh_sim, fresh_client):
    fresh_sim.configure(latency_ms=150)
    started = time.perf_counter()
    fresh_client.get("/system/info")
    assert time.perf_counter() - started >= 0.15


def test_timeout_next_outlasts_the_client(fresh_sim):
    fresh_sim.configure(timeout_next=1, timeout_seconds=1.0)
    with api_client(fresh_sim) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/system/info", timeout=0.2)
        assert client.get("/system/info", timeout=5).status_code == 200


def test_revoked_keys_answer_401(fresh_sim, fresh_client):
    assert fresh_client.get("/system/info").status_code == 200
    fresh_sim.configure(revoked=True)
    response = fresh_client.get("/system/info")
    assert response.status_code == 401
    assert response.json() == {"code": "ConnectWiseApi", "message": "UserNotAuthenticated"}


def test_request_log_records_method_path_query_status_and_time(fresh_sim, fresh_client):
    fresh_client.get("/finance/invoices", params={"pageSize": 2})
    fresh_client.get("/finance/invoices/999999")
    log = fresh_sim.requests
    assert [(r.method, r.status) for r in log[-2:]] == [("GET", 200), ("GET", 404)]
    assert log[-2].path.endswith("/apis/3.0/finance/invoices") and log[-2].query == "pageSize=2"
    assert log[-1].time >= log[-2].time and log[-1].duration_ms >= 0


def test_control_api_sets_knobs_and_reads_the_log(fresh_sim, fresh_client):
    control = httpx.Client(base_url=fresh_sim.url + "/_sim")
    assert control.post("/config", json={"error_next": 1}).json()["error_next"] == 1
    assert fresh_client.get("/system/info").status_code == 500
    body = control.get("/requests").json()
    assert body["count"] == 1 and body["requests"][0]["status"] == 500
    assert control.get("/config").json()["error_next"] == 0
    assert control.post("/config", json={"no_such_knob": 1}).status_code == 400


def test_control_reset_clears_log_and_counters(fresh_sim, fresh_client):
    control = httpx.Client(base_url=fresh_sim.url + "/_sim")
    control.post("/config", json={"budget": 1})
    fresh_client.get("/system/info")
    assert fresh_client.get("/system/info").status_code == 429
    control.post("/reset")
    assert control.get("/requests").json()["count"] == 0
    assert control.get("/config").json()["budget"] is None
    assert fresh_client.get("/system/info").status_code == 200


def test_control_api_revokes_keys_at_runtime(fresh_sim, fresh_client):
    httpx.post(fresh_sim.url + "/_sim/config", json={"revoked": True})
    assert fresh_client.get("/system/info").status_code == 401


def test_control_api_needs_no_cw_auth_and_lists_review_cases(fresh_sim):
    cases = httpx.get(fresh_sim.url + "/_sim/cases").json()
    assert cases["credit_memo_positive_total"] == [6]


def test_control_calls_are_not_logged(fresh_sim):
    httpx.get(fresh_sim.url + "/_sim/config")
    assert fresh_sim.requests == []
