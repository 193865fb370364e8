"""Every kind of response validates against the bundled OpenAPI subset (real ConnectWise shapes).

OpenAPI 3.0 is mapped to JSON Schema 2020-12: ``nullable`` widens the type (we still assert no nulls are
sent), ``format`` is not enforced, and objects with declared properties get ``additionalProperties: false``
so a field name the real API does not have fails the test.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from cwsim.resources import RESOURCES
from cwsim.schemas import components
from tests.cwsim.conftest import fetch_all


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: _convert(v) for k, v in node.items() if not k.startswith("x-") and k not in ("format", "nullable")
    }
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


_SCHEMAS = {name: _convert(copy.deepcopy(schema)) for name, schema in components().items()}


def validator(schema: dict) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": {"schemas": _SCHEMAS}})


def model(name: str) -> Draft202012Validator:
    return validator({"$ref": f"#/components/schemas/{name}"})


def array_of(name: str) -> Draft202012Validator:
    return validator({"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}})


def assert_no_nulls(value: Any, where: str = "$") -> None:
    assert value is not None, f"null at {where}"
    if isinstance(value, dict):
        for k, v in value.items():
            assert_no_nulls(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            assert_no_nulls(v, f"{where}[{i}]")


def check(v: Draft202012Validator, body: Any) -> None:
    errors = sorted(v.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    assert_no_nulls(body)


def _parents(client, resource) -> list[int]:
    parent_paths = {
        "invoices": "/finance/invoices",
        "billingSetups": "/finance/billingSetups",
        "taxCodes": "/finance/taxCodes",
        "agreements": "/finance/agreements",
        "tickets": "/service/tickets",
    }
    return [r["id"] for r in fetch_all(client, parent_paths[resource.parent_table])]


def _collection_paths(client, resource) -> list[str]:
    path = "/" + "/".join(resource.path)
    if resource.parent_table is None:
        return [path]
    return [path.replace("{parent}", str(pid)) for pid in _parents(client, resource)]


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: "/".join(r.path))
def test_every_record_of_every_collection_matches_its_schema(client, resource):
    lister, single, counter = array_of(resource.schema), model(resource.schema), model("Count")
    seen = 0
    for path in _collection_paths(client, resource):
        records = fetch_all(client, path)
        check(lister, records)
        check(counter, client.get(path + "/count").json())
        seen += len(records)
        for record in records[:3]:
            check(single, client.get(f"{path}/{record['id']}").json())
    if resource.table != "callbacks":
        assert seen > 0, "collection is empty; nothing was validated"


def test_single_gets_validate_for_every_invoice_and_line(client):
    invoice = model("Invoice")
    for record in fetch_all(client, "/finance/invoices"):
        check(invoice, client.get(f"/finance/invoices/{record['id']}").json())


def test_every_reference_carries_an_href(client):
    def walk(value):
        if isinstance(value, dict):
            if "id" in value and "_info" in value and value is not record:
                assert any(k.endswith("_href") for k in value["_info"]), value
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for record in client.get("/time/entries", params={"pageSize": 50}).json():
        assert {"lastUpdated", "updatedBy"} <= set(record["_info"])
        walk(record)


def test_dates_use_the_cw_format(client):
    record = client.get("/finance/invoices/1").json()
    for key in ("date", "dueDate"):
        assert len(record[key]) == 20 and record[key].endswith("T00:00:00Z")


def test_error_bodies_match_error_response_message(client):
    error = model("ErrorResponseMessage")
    responses = [
        client.get("/finance/invoices/999999"),
        client.get("/finance/invoices", params={"conditions": "id = ("}),
        client.get("/finance/invoices", params={"conditions": "nope = 1"}),
        client.get("/nope/nothing"),
        client.delete("/system/members/1"),  # members have no DELETE (invoices do)
        client.patch("/finance/invoices/1", json=[{"op": "replace", "path": "total", "value": 1}]),
        client.post("/system/callbacks", json={"objectId": 1}),
    ]
    assert [r.status_code for r in responses] == [404, 400, 400, 404, 405, 400, 400]
    for response in responses:
        check(error, response.json())


def test_unauthenticated_body_matches_error_response_message(sim):
    import httpx

    check(model("ErrorResponseMessage"), httpx.get(sim.api_url + "/system/info").json())


def test_patch_results_match_their_schemas(fresh_client):
    checks = [
        ("/finance/invoices/3", "Invoice", [{"op": "replace", "path": "status", "value": {"id": 2}}]),
        (
            "/finance/invoices/3/routings/31",
            "InvoiceRouting",
            [{"op": "replace", "path": "reviewedFlag", "value": True}],
        ),
    ]
    product = fresh_client.get("/procurement/products", params={"conditions": "invoice/id=3"}).json()[0]
    entry = fresh_client.get("/time/entries", params={"conditions": "invoice/id=4"}).json()[0]
    checks.append(
        (
            f"/procurement/products/{product['id']}",
            "ProductItem",
            [{"op": "replace", "path": "quantity", "value": 3}],
        )
    )
    checks.append(
        (
            f"/time/entries/{entry['id']}",
            "TimeEntry",
            [{"op": "replace", "path": "/notes", "value": "Updated notes for the invoice"}],
        )
    )
    for path, schema, ops in checks:
        response = fresh_client.patch(path, json=ops)
        assert response.status_code == 200, response.text
        check(model(schema), response.json())


def test_system_info_and_created_callback_match(fresh_client):
    check(model("SystemInfo"), fresh_client.get("/system/info").json())
    created = fresh_client.post(
        "/system/callbacks",
        json={"url": "https://x.test/cb?id=", "objectId": 1, "type": "invoice", "level": "owner"},
    )
    check(model("CallbackEntry"), created.json())
