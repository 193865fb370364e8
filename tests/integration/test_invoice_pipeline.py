"""The invoice pipeline (app.invoices.service) against the simulator: payloads as a frozen JSON value that rebuilds
the same document, one round of requests when the reference hints are right and a correct document when they are
wrong, hints kept per tenant and invoice as ids only, and one InvoiceUnavailable for every way a fetch fails."""

from __future__ import annotations

import dataclasses
import json
import threading

import httpx
import pytest

from app.connectwise import errors as cw_errors
from app.connectwise.client import Client, Credentials
from app.invoices.errors import InvalidInvoiceData, InvoiceNotFound, InvoiceUnavailable
from app.invoices.hints import ReferenceHints
from app.invoices.service import (
    InvoicePayloads,
    build_document,
    fetch_payloads,
    load_document,
    reconstruct,
    references_of,
)
from bench.render import sequential_rounds
from tests.integration.invoice_helpers import connected_tenant, make_link

CLIENT_ID = "6f1b5c9e-0000-4000-8000-000000000001"
# Payments (1, 16), products and time (3), EUR with an agreement (9), JPY (10), a fixed-fee project (16), credits (17).
SAMPLE = (1, 3, 9, 10, 12, 16, 17)


class Rounds(Client):
    """Counts sequential requests (outside Client.parallel) and parallel batches: the rounds of a fetch."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.local = threading.local()
        self.sequential: list[str] = []
        self.batches = 0
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.sequential.clear()
        self.paths.clear()
        self.batches = 0

    @property
    def rounds(self) -> int:
        return len(self.sequential) + self.batches

    def parallel(self, calls):  # type: ignore[no-untyped-def]
        self.batches += 1

        def inside(call):  # type: ignore[no-untyped-def]
            def run():  # type: ignore[no-untyped-def]
                self.local.inside = True
                return call()
            return run

        return super().parallel([inside(c) for c in calls])

    def _request(self, method, url, **kwargs):  # type: ignore[no-untyped-def]
        with self._lock:
            self.paths.append(url.split("/apis/3.0/", 1)[-1].split("?", 1)[0])
            if not getattr(self.local, "inside", False):
                self.sequential.append(url)
        return super()._request(method, url, **kwargs)


def counting(sim, **kwargs) -> Rounds:  # type: ignore[no-untyped-def]
    cw = Rounds(Credentials(sim.url, sim.company_id, sim.public_key, sim.private_key), CLIENT_ID,
                allow_loopback_http=True, sleep=lambda s: None, **kwargs)
    assert cw.api_base  # discovery once per client, before any invoice
    cw.reset()
    return cw


# -- the value ---------------------------------------------------------------------------------------------------


def test_payloads_survive_a_json_round_trip_and_rebuild_the_same_document(fresh_sim):
    with counting(fresh_sim) as cw:
        for invoice_id in SAMPLE:
            payloads = fetch_payloads(cw, invoice_id)
            text = payloads.to_json()
            again = InvoicePayloads.from_json(text)
            assert again == payloads and again.to_json() == text
            assert build_document(again) == build_document(payloads) == reconstruct(cw, invoice_id)
            assert json.loads(text)["header"]["id"] == invoice_id


def test_payloads_are_read_only_all_the_way_down(fresh_sim):
    with counting(fresh_sim) as cw:
        payloads = fetch_payloads(cw, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        payloads.invoice_id = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        payloads.header["total"] = 0  # type: ignore[index]
    with pytest.raises((TypeError, AttributeError)):
        payloads.collections["time/entries"][0]["hourlyRate"] = 1  # type: ignore[index]
    plain = payloads.collections_json()
    plain["time/entries"][0]["hourlyRate"] = 1  # a copy: the value itself is unchanged
    assert payloads.collections["time/entries"][0]["hourlyRate"] != 1


def test_stored_payloads_of_another_invoice_or_no_known_format_are_refused():
    with pytest.raises(ValueError):
        InvoicePayloads.from_json('{"invoice_id": 3, "header": {}, "collections": {}}')
    with pytest.raises(ValueError):
        InvoicePayloads.from_json('[1, 2]')
    forged = InvoicePayloads(3, {"id": 4, "company": {"id": 1}}, {})
    with pytest.raises(InvalidInvoiceData, match="another invoice"):
        build_document(forged)


# -- rounds ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("invoice_id", SAMPLE)
def test_with_the_last_fetchs_hints_an_invoice_takes_one_round_of_requests(fresh_sim, invoice_id):
    with counting(fresh_sim) as cw:
        first = fetch_payloads(cw, invoice_id)
        assert cw.rounds == 2  # without hints: the header, then everything it names
        cw.reset()
        second = fetch_payloads(cw, invoice_id, references_of(first))
        assert cw.sequential == [] and cw.batches == 1
    assert second == first


def test_a_wrong_hint_costs_a_second_round_never_a_wrong_document(fresh_sim):
    with counting(fresh_sim) as cw:
        right = fetch_payloads(cw, 9)
        refs = references_of(right)
        other = references_of(fetch_payloads(cw, 12))
        assert other["company"] != refs["company"] and "tax_code" in refs and "payments" not in refs
        # Another company, no tax code, and payments and a project the header does not name.
        wrong = {**{k: v for k, v in refs.items() if k != "tax_code"}, "company": other["company"],
                 "payments": 9, "project": 5}
        cw.reset()
        fetched = fetch_payloads(cw, 9, wrong)
        assert cw.sequential == [] and cw.batches == 2
    assert fetched == right  # records the header does not name are dropped, the named ones read by their ids
    assert build_document(fetched) == build_document(right)


def test_hints_that_are_not_ids_are_ignored(fresh_sim):
    with counting(fresh_sim) as cw:
        right = fetch_payloads(cw, 3)
        cw.reset()
        junk = {"setup": "1; drop", "company": -4, "tax_code": True, "nonsense": 7, "../x": 1}
        assert fetch_payloads(cw, 3, junk) == right  # type: ignore[arg-type]
        assert not any("nonsense" in path or ".." in path for path in cw.paths)


def test_a_hinted_read_that_fails_is_asked_again_the_normal_way(fresh_sim):
    with counting(fresh_sim) as cw:
        right = fetch_payloads(cw, 9)
    failed: list[str] = []

    class FailSetupOnce(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if "/finance/billingSetups/" in request.url.path and not failed:
                failed.append(request.url.path)
                return httpx.Response(502, json={"code": "BadGateway", "message": "upstream"})
            return super().handle_request(request)

    with counting(fresh_sim, transport=FailSetupOnce(), max_retries=0) as cw:
        fetched = fetch_payloads(cw, 9, references_of(right))
        assert failed and cw.batches == 2
    assert fetched == right


def test_an_unknown_invoice_with_hints_is_still_invoice_not_found(fresh_sim):
    with counting(fresh_sim) as cw, pytest.raises(InvoiceNotFound, match="no invoice 99999"):
        fetch_payloads(cw, 99999, {"setup": 1, "company": 2})


# -- hints -------------------------------------------------------------------------------------------------------


def test_load_document_keeps_hints_per_tenant_and_invoice_as_ids_only(fresh_sim, redis_conn):
    hints = ReferenceHints(redis_conn)
    with counting(fresh_sim, tenant_id="tenant-a") as cw:
        doc = load_document(cw, 1, hints=hints)
        assert cw.rounds == 2
        cw.reset()
        assert load_document(cw, 1, hints=hints) == doc
        assert cw.rounds == 1
    kept = redis_conn.get(ReferenceHints.key("tenant-a", 1))
    assert kept is not None and 0 < redis_conn.ttl(ReferenceHints.key("tenant-a", 1)) <= 30 * 86400
    values = json.loads(kept)
    assert set(values) >= {"company", "payments"} and all(type(v) is int for v in values.values())
    assert hints.get("tenant-b", 1) == {} and hints.get("tenant-a", 3) == {}
    redis_conn.set(ReferenceHints.key("tenant-a", 1), b"\xff not json")
    assert hints.get("tenant-a", 1) == {}


def test_a_second_public_render_asks_connectwise_in_one_round(app, client, make_tenant, fresh_sim, monkeypatch):
    """Measured from the simulator's side: requests that overlap in time belong to one round."""
    connected_tenant(client, make_tenant, fresh_sim)
    token = make_link(client, 3)
    monkeypatch.setattr(app.config["BI"], "CONNECTWISE_CACHE_TTL_SECONDS", 0)
    visitor = app.test_client()
    fresh_sim.configure(latency_ms=40)
    try:
        rounds = []
        for _ in range(2):
            before = len(fresh_sim.requests)
            assert visitor.get(f"/i/{token}").status_code == 200
            rounds.append(sequential_rounds(fresh_sim.requests[before:]))
    finally:
        fresh_sim.configure(latency_ms=0)
    # The first render has no hint yet (the header, then what it names); from then on one round is enough.
    assert rounds == [2, 1]


# -- one failure family ------------------------------------------------------------------------------------------


def test_every_way_a_fetch_fails_is_one_invoice_unavailable(fresh_sim):
    busy = InvoiceUnavailable.of(cw_errors.Busy("no slot", retry_after=7))
    assert (busy.reason, busy.status, busy.retry_after) == ("busy", 503, 7) and "ConnectWise is busy" in str(busy)
    missing = InvoiceUnavailable.of(InvoiceNotFound(42))
    assert (missing.reason, missing.status, str(missing)) == ("not_found", 404, "ConnectWise has no invoice 42.")
    bad = InvoiceUnavailable.of(InvalidInvoiceData("ConnectWise sent a invoice whose total is not a number"))
    assert (bad.reason, bad.status) == ("unreadable", 503) and "total is not a number" in str(bad)
    lonely = InvoiceUnavailable.not_connected()
    assert (lonely.reason, lonely.status) == ("not_connected", 404) and "Connect ConnectWise" in str(lonely)
    with counting(fresh_sim, max_retries=0) as cw:
        with pytest.raises(InvoiceUnavailable) as gone:
            load_document(cw, 99999)
        assert gone.value.reason == "not_found" and isinstance(gone.value.__cause__, InvoiceNotFound)
        fresh_sim.configure(error_rate=1.0, error_status=503)
        try:
            with pytest.raises(InvoiceUnavailable) as down:
                load_document(cw, 9)
        finally:
            fresh_sim.configure(error_rate=0.0)
    assert down.value.reason == "unreadable" and down.value.status == 503
    assert isinstance(down.value.__cause__, cw_errors.ConnectWiseError)


def test_the_media_show_the_same_sentence_for_a_missing_invoice(app, client, make_tenant, fresh_sim):
    connected_tenant(client, make_tenant, fresh_sim)
    page = client.get("/invoices/99999")
    assert page.status_code == 404 and "ConnectWise has no invoice 99999." in page.get_data(as_text=True)
    token = make_link(client, 99999)
    public = app.test_client().get(f"/i/{token}")
    assert public.status_code == 410 and "99999" not in public.get_data(as_text=True)


def test_the_staff_preview_without_a_connection_says_to_connect(app, client, make_tenant):
    from tests.conftest import sign_in

    sign_in(client, make_tenant())
    page = client.get("/invoices/3")
    assert page.status_code == 404 and "Connect ConnectWise first" in page.get_data(as_text=True)
