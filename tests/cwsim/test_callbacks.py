"""Callback delivery: a PATCH through the simulator POSTs the documented, signed payload to each matching callback,
with a key_url the simulator itself answers, and retries a receiver that answers 404/409/419/429."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from cwsim.callbacks import wait_for


class Receiver:
    """A loopback HTTP endpoint that records what it is sent and answers the statuses queued on it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict, bytes]] = []
        self.statuses: list[int] = []
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        request = Request(environ)
        self.received.append((request.full_path, dict(request.headers), request.get_data()))
        status = self.statuses.pop(0) if self.statuses else 200
        return Response(status=status)(environ, start_response)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def register(client: httpx.Client, url: str, kind: str, **extra) -> int:  # type: ignore[no-untyped-def]
    body = {"url": url, "objectId": 1, "type": kind, "level": "owner", **extra}
    created = client.post("/system/callbacks", json=body)
    assert created.status_code == 201, created.text
    return created.json()["id"]


def test_an_invoice_patch_posts_a_signed_payload_whose_key_the_key_url_serves(fresh_sim, fresh_client, receiver):
    cid = register(fresh_client, f"{receiver.url}/hook?recordId=", "invoice")
    fresh_client.patch("/finance/invoices/3", json=[{"op": "replace", "path": "customerPO", "value": "PO-9"}])
    [delivery] = wait_for(fresh_sim.state, 1)
    assert delivery.attempts == [200]
    [(path, headers, body)] = receiver.received
    assert path == "/hook?recordId=3"
    payload = json.loads(body)
    assert (payload["Type"], payload["Action"], payload["ID"], payload["CallbackObjectRecId"]) == (
        "invoice", "updated", 3, cid)
    assert json.loads(payload["Entity"])["customerPO"] == "PO-9"
    assert payload["CompanyId"] == fresh_sim.company_id and payload["MessageId"]
    key_url = payload["Metadata"]["key_url"]
    assert key_url.startswith(fresh_sim.url + "/") and "/system/callbackkey/" in key_url
    assert httpx.get(key_url).status_code == 400  # the clientId header is required, as on the real API
    signing_key = httpx.get(key_url, headers={"clientId": "tests"}).json()["signing_key"]
    expected = base64.b64encode(hmac.new(hashlib.sha256(signing_key.encode()).digest(), body,
                                         hashlib.sha256).digest()).decode()
    assert headers["X-Content-Signature"] == expected


def test_only_callbacks_of_the_changed_type_are_called_and_inactive_ones_never(fresh_sim, fresh_client, receiver):
    register(fresh_client, f"{receiver.url}/time?id=", "time")
    register(fresh_client, f"{receiver.url}/off?id=", "invoice", inactiveFlag=True)
    entry = fresh_client.get("/time/entries", params={"conditions": "invoice/id=4"}).json()[0]
    fresh_client.patch(f"/time/entries/{entry['id']}", json=[{"op": "replace", "path": "notes", "value": "x"}])
    fresh_client.patch("/finance/invoices/4", json=[{"op": "replace", "path": "customerPO", "value": "y"}])
    wait_for(fresh_sim.state, 1)
    assert [p for p, _, _ in receiver.received] == [f"/time?id={entry['id']}"]
    assert json.loads(json.loads(receiver.received[0][2])["Entity"])["invoice"]["id"] == 4


def test_a_receiver_answering_409_is_tried_again_and_a_500_is_not(fresh_sim, fresh_client, receiver):
    fresh_sim.state.callback_retry_delays = (0.05, 0.1)
    register(fresh_client, f"{receiver.url}/hook?recordId=", "invoice")
    receiver.statuses = [409, 429, 200]
    fresh_client.patch("/finance/invoices/5", json=[{"op": "replace", "path": "customerPO", "value": "a"}])
    [first] = wait_for(fresh_sim.state, 1)
    assert first.attempts == [409, 429, 200]
    receiver.statuses = [500]
    fresh_client.patch("/finance/invoices/5", json=[{"op": "replace", "path": "customerPO", "value": "b"}])
    second = wait_for(fresh_sim.state, 2)[1]
    assert second.attempts == [500]


def test_a_key_url_with_another_key_id_is_not_found(fresh_sim):
    url = f"{fresh_sim.url}/{fresh_sim.state.codebase}system/callbackkey/index.rails"
    response = httpx.get(url, params={"companyName": fresh_sim.company_id, "id": "nope"}, headers={"clientId": "t"})
    assert response.status_code == 404


def test_deleting_a_time_entry_or_an_invoice_answers_204_and_posts_a_deleted_callback_without_entity(
        fresh_sim, fresh_client, receiver):
    register(fresh_client, f"{receiver.url}/time?id=", "time")
    register(fresh_client, f"{receiver.url}/invoice?id=", "invoice")
    entry = fresh_client.get("/time/entries", params={"conditions": "invoice/id=4"}).json()[0]
    assert fresh_client.delete(f"/time/entries/{entry['id']}").status_code == 204
    assert fresh_client.get(f"/time/entries/{entry['id']}").status_code == 404
    assert entry["id"] not in [t["id"] for t in fresh_client.get(
        "/time/entries", params={"conditions": "invoice/id=4"}).json()]
    assert fresh_client.delete("/finance/invoices/4").status_code == 204
    assert fresh_client.get("/finance/invoices/4").status_code == 404
    assert fresh_client.delete("/finance/invoices/4").status_code == 404
    wait_for(fresh_sim.state, 2)
    sent = {p: json.loads(body) for p, _, body in receiver.received}
    deleted_time, deleted_invoice = sent[f"/time?id={entry['id']}"], sent["/invoice?id=4"]
    assert (deleted_time["Action"], deleted_time["Type"], deleted_time["ID"], deleted_time["Entity"]) == (
        "deleted", "time", entry["id"], "")
    assert (deleted_invoice["Action"], deleted_invoice["Type"], deleted_invoice["ID"]) == ("deleted", "invoice", 4)


def test_expense_changes_call_expense_callbacks_and_product_lines_call_none(fresh_sim, fresh_client, receiver):
    register(fresh_client, f"{receiver.url}/expense?id=", "expense")
    expense = fresh_client.get("/expense/entries", params={"pageSize": 1}).json()[0]
    product = fresh_client.get("/procurement/products", params={"pageSize": 1}).json()[0]
    fresh_client.patch(f"/procurement/products/{product['id']}",
                       json=[{"op": "replace", "path": "description", "value": "x"}])
    fresh_client.patch(f"/expense/entries/{expense['id']}", json=[{"op": "replace", "path": "notes", "value": "y"}])
    wait_for(fresh_sim.state, 1)
    assert [p for p, _, _ in receiver.received] == [f"/expense?id={expense['id']}"]
    assert [d.type for d in fresh_sim.state.deliveries] == ["expense"]


def test_a_callback_type_or_level_the_notes_do_not_list_is_refused(fresh_client):
    for kind, level, field in (("product", "owner", "type"), ("ProductCatalog", "company", "level")):
        response = fresh_client.post("/system/callbacks", json={"url": "https://hook.example/x?id=", "objectId": 1,
                                                                "type": kind, "level": level})
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == field
    ok = fresh_client.post("/system/callbacks", json={"url": "https://hook.example/x?id=", "objectId": 1,
                                                      "type": "ProductCatalog", "level": "Owner"})
    assert ok.status_code == 201


def test_a_path_the_security_role_lacks_answers_403(fresh_sim, fresh_client):
    fresh_sim.configure(forbidden="system/callbacks")
    assert fresh_client.post("/system/callbacks", json={"url": "https://hook.example/x?id=", "objectId": 1,
                                                        "type": "invoice", "level": "owner"}).status_code == 403
    assert fresh_client.get("/system/callbacks").status_code == 403
    assert fresh_client.get("/finance/invoices/3").status_code == 200
