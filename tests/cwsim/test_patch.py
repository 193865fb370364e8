"""PATCH semantics: status changes, line edits, derived amounts, persistence, and validation errors."""

from __future__ import annotations


def test_invoice_status_patch_persists_for_the_process(fresh_client):
    response = fresh_client.patch(
        "/finance/invoices/3", json=[{"op": "replace", "path": "status", "value": {"id": 3}}]
    )
    assert response.status_code == 200
    assert response.json()["status"]["name"] == "Approved"
    assert fresh_client.get("/finance/invoices/3").json()["status"]["id"] == 3
    listed = fresh_client.get("/finance/invoices", params={"conditions": "status/id = 3 and id = 3"}).json()
    assert [r["id"] for r in listed] == [3]


def test_patch_path_with_leading_slash_is_accepted(fresh_client):
    response = fresh_client.patch(
        "/finance/invoices/4", json=[{"op": "replace", "path": "/status", "value": {"id": 5}}]
    )
    assert response.status_code == 200
    assert response.json()["status"]["name"] == "Sent"


def test_patch_stamps_last_updated_and_updated_by(fresh_client):
    before = fresh_client.get("/finance/invoices/5").json()["_info"]
    after = fresh_client.patch(
        "/finance/invoices/5", json=[{"op": "replace", "path": "status", "value": {"id": 2}}]
    ).json()["_info"]
    assert after["lastUpdated"] > before["lastUpdated"]
    assert after["updatedBy"] == "bettersim_api"


def test_product_description_patch_persists(fresh_client):
    pid = fresh_client.get("/procurement/products", params={"conditions": "invoice/id=3"}).json()[0]["id"]
    fresh_client.patch(
        f"/procurement/products/{pid}",
        json=[{"op": "replace", "path": "description", "value": "Edited line"}],
    )
    assert fresh_client.get(f"/procurement/products/{pid}").json()["description"] == "Edited line"
    listed = fresh_client.get("/procurement/products", params={"conditions": "invoice/id=3"}).json()
    assert any(p["description"] == "Edited line" for p in listed)


def test_product_price_patch_recomputes_extended_amounts(fresh_client):
    product = fresh_client.get("/procurement/products", params={"conditions": "invoice/id=3"}).json()[0]
    updated = fresh_client.patch(
        f"/procurement/products/{product['id']}", json=[{"op": "replace", "path": "price", "value": 1100.0}]
    ).json()
    assert updated["extPrice"] == round(product["quantity"] * 1100.0, 2)


def test_time_entry_notes_and_billable_option_patch(fresh_client):
    entry = fresh_client.get("/time/entries", params={"conditions": "invoice/id=4"}).json()[0]
    updated = fresh_client.patch(
        f"/time/entries/{entry['id']}",
        json=[
            {"op": "replace", "path": "notes", "value": "Rewrote the notes for the client"},
            {"op": "replace", "path": "billableOption", "value": "NoCharge"},
        ],
    ).json()
    assert updated["notes"] == "Rewrote the notes for the client"
    assert updated["extendedInvoiceAmount"] == 0.0
    assert fresh_client.get(f"/time/entries/{entry['id']}").json()["billableOption"] == "NoCharge"


def test_routing_review_flag_patch(fresh_client):
    routing = fresh_client.get("/finance/invoices/3/routings").json()[0]
    updated = fresh_client.patch(
        f"/finance/invoices/3/routings/{routing['id']}",
        json=[{"op": "replace", "path": "reviewedFlag", "value": True}],
    )
    assert updated.status_code == 200 and updated.json()["reviewedFlag"] is True


def test_patching_an_unpatchable_field_is_invalid_object(fresh_client):
    response = fresh_client.patch(
        "/finance/invoices/3", json=[{"op": "replace", "path": "total", "value": 1}]
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "InvalidObject" and body["errors"][0]["field"] == "total"


def test_unknown_billing_status_is_rejected(fresh_client):
    response = fresh_client.patch(
        "/finance/invoices/3", json=[{"op": "replace", "path": "status", "value": {"id": 999}}]
    )
    assert response.status_code == 400


def test_patch_body_must_be_an_operation_array(fresh_client):
    assert fresh_client.patch("/finance/invoices/3", json={"status": 1}).status_code == 400
    assert (
        fresh_client.patch(
            "/finance/invoices/3", content=b"{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )


def test_patch_of_unknown_id_is_404(fresh_client):
    response = fresh_client.patch(
        "/finance/invoices/99999", json=[{"op": "replace", "path": "status", "value": {"id": 1}}]
    )
    assert response.status_code == 404


def test_reset_restores_patched_data(fresh_sim, fresh_client):
    fresh_client.patch("/finance/invoices/3", json=[{"op": "replace", "path": "status", "value": {"id": 7}}])
    fresh_sim.reset()
    assert fresh_client.get("/finance/invoices/3").json()["status"]["id"] == 1
