"""An invoice exported to accounting (it carries a ``glBatch``) is closed to changes: a PATCH, its status included,
is refused as an invalid object naming the batch, and nothing changes; an invoice not in a batch still changes."""

from __future__ import annotations


def test_an_exported_invoice_refuses_a_status_change_and_stays_as_it_was(fresh_sim, fresh_client):
    exported = next(i for i in fresh_sim.state.data["invoices"].iter() if i.get("glBatch"))
    before = fresh_client.get(f"/finance/invoices/{exported['id']}").json()
    response = fresh_client.patch(f"/finance/invoices/{exported['id']}",
                                  json=[{"op": "replace", "path": "status", "value": {"id": 2}}])
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "InvalidObject" and body["errors"][0]["code"] == "InvoiceClosed"
    assert exported["glBatch"]["name"] in body["errors"][0]["message"]
    after = fresh_client.get(f"/finance/invoices/{exported['id']}").json()
    assert after["status"] == before["status"] and after["_info"] == before["_info"]


def test_unbatched_it_changes_again(fresh_sim, fresh_client):
    exported = next(i for i in fresh_sim.state.data["invoices"].iter() if i.get("glBatch"))
    fresh_sim.state.data["invoices"].set_fields(exported["id"], {"glBatch": None})
    response = fresh_client.patch(f"/finance/invoices/{exported['id']}",
                                  json=[{"op": "replace", "path": "status", "value": {"id": 2}}])
    assert response.status_code == 200 and response.json()["status"]["id"] == 2
