"""The simulator's audit trail: seeded history per invoice, entries for every change it applies (invoice and line
PATCHes, entered by the API key's member), the official AuditTrailEntry shape, paging, count, and reset."""

from __future__ import annotations

from cwsim.resources import API_MEMBER
from tests.cwsim.conftest import fetch_all
from tests.cwsim.test_schema_conformance import array_of, check, model


def trail(client, invoice_id: int, **params) -> list[dict]:
    response = client.get("/system/audittrail", params={"type": "Invoice", "id": invoice_id, **params})
    assert response.status_code == 200, response.text
    return response.json()


def a_line_with_an_invoice(client, path: str) -> dict:
    return next(r for r in fetch_all(client, path) if r.get("invoice", {}).get("id"))


def test_every_seeded_invoice_has_a_creation_entry_and_moved_ones_a_status_change(client):
    invoices = fetch_all(client, "/finance/invoices")
    for invoice in invoices:
        texts = [e["text"] for e in trail(client, invoice["id"])]
        assert texts[-1] == f"Invoice {invoice['invoiceNumber']} created"
        moved = invoice["status"]["name"] != "New"
        assert (f"Status changed from New to {invoice['status']['name']}" in texts) is moved
    assert any(i["status"]["name"] != "New" for i in invoices) and any(i["status"]["name"] == "New" for i in invoices)


def test_entries_match_the_official_shape_newest_first(client):
    entries = trail(client, 4)
    check(array_of("AuditTrailEntry"), entries)
    assert len(entries) >= 2
    dates = [e["enteredDate"] for e in entries]
    assert dates == sorted(dates, reverse=True)
    assert all(len(d) == 20 and d.endswith("Z") for d in dates)
    assert {e["enteredBy"] for e in entries} <= {"lmartin", "jmorales"}
    assert {e["auditType"] for e in entries} == {"Invoice"}


def test_an_invoice_patch_appends_entries_by_the_api_member(fresh_client):
    before = trail(fresh_client, 3)
    response = fresh_client.patch("/finance/invoices/3", json=[
        {"op": "replace", "path": "status", "value": {"id": 4}},
        {"op": "replace", "path": "customerPO", "value": "PO-77"},
        {"op": "replace", "path": "internalNotes", "value": "Call the client before sending"},
    ])
    assert response.status_code == 200, response.text
    after = trail(fresh_client, 3)
    new = after[: len(after) - len(before)]
    assert after[len(new):] == before
    texts = {e["text"] for e in new}
    old_status = fresh_client.get("/finance/billingStatuses").json()
    assert texts == {f"Status changed from {_name_of(before, old_status)} to Rejected",
                     'Customer PO changed from "" to "PO-77"', "Internal notes changed"}
    assert {e["enteredBy"] for e in new} == {API_MEMBER}
    assert {e["auditSource"] for e in new} == {"API"}
    assert {e["auditSubType"] for e in new} == {"Status", "Customer PO", "Internal notes"}


def _name_of(entries: list[dict], statuses: list[dict]) -> str:
    """The invoice's status before the patch, as its trail last said it (or the default, New)."""
    for e in entries:
        if e["auditSubType"] == "Status":
            return e["text"].rsplit(" to ", 1)[1]
    return next(s["name"] for s in statuses if s["defaultFlag"])


def test_a_patch_that_changes_nothing_adds_nothing(fresh_client):
    invoice = fresh_client.get("/finance/invoices/5").json()
    before = trail(fresh_client, 5)
    fresh_client.patch("/finance/invoices/5", json=[{"op": "replace", "path": "status",
                                                     "value": {"id": invoice["status"]["id"]}}])
    assert trail(fresh_client, 5) == before


def test_line_patches_go_to_the_line_trail_and_the_invoice_trail(fresh_client):
    for path, audit_type, op, said in (
        ("/procurement/products", "ProductItem", {"op": "replace", "path": "price", "value": 1234.5},
         "Price changed from"),
        ("/time/entries", "Time", {"op": "replace", "path": "billableOption", "value": "NoCharge"},
         'Billable option changed from "Billable" to "NoCharge"'),
        ("/expense/entries", "Expense", {"op": "replace", "path": "notes", "value": "Taxi to the site"},
         "Notes changed"),
    ):
        line = a_line_with_an_invoice(fresh_client, path)
        if audit_type == "Time" and line["billableOption"] != "Billable":
            line = next(r for r in fetch_all(fresh_client, path)
                        if r.get("invoice", {}).get("id") and r["billableOption"] == "Billable")
        invoice_id = line["invoice"]["id"]
        assert fresh_client.patch(f"{path}/{line['id']}", json=[op]).status_code == 200
        # A line had no trail before; everything on it now is this patch's (derived amounts may be said too).
        own = fresh_client.get("/system/audittrail", params={"type": audit_type, "id": line["id"]}).json()
        mine = next(e for e in own if e["text"].startswith(said))
        assert {e["auditType"] for e in own} == {audit_type} and {e["enteredBy"] for e in own} == {API_MEMBER}
        on_invoice = trail(fresh_client, invoice_id)[: len(own)]
        assert {e["text"] for e in on_invoice} == {f"{_LINE[audit_type]} {line['id']}: {e['text']}" for e in own}
        assert {e["auditType"] for e in on_invoice} == {"Invoice"}
        if audit_type == "ProductItem":
            assert mine["text"].endswith(" to 1234.50")


_LINE = {"ProductItem": "Product", "Time": "Time entry", "Expense": "Expense"}


def test_untrusted_text_is_kept_verbatim(fresh_client):
    fresh_client.patch("/finance/invoices/6", json=[{"op": "replace", "path": "customerPO",
                                                     "value": "<script>alert(1)</script>"}])
    assert trail(fresh_client, 6)[0]["text"].endswith('to "<script>alert(1)</script>"')


def test_paging_count_conditions_fields_and_order(fresh_client):
    for n in range(4):
        fresh_client.patch("/finance/invoices/7", json=[{"op": "replace", "path": "reference", "value": f"R{n}"}])
    entries = trail(fresh_client, 7)
    count = fresh_client.get("/system/audittrail/count", params={"type": "Invoice", "id": 7})
    check(model("Count"), count.json())
    assert count.json() == {"count": len(entries)}
    first = fresh_client.get("/system/audittrail", params={"type": "Invoice", "id": 7, "pageSize": 2})
    assert first.json() == entries[:2]
    assert 'rel="next"' in first.headers["Link"] and "page=2" in first.headers["Link"]
    assert trail(fresh_client, 7, pageSize=2, page=2) == entries[2:4]
    refs = trail(fresh_client, 7, conditions='auditSubType="Reference"', fields="text")
    assert refs == [{"text": 'Reference changed from "R2" to "R3"'}, {"text": 'Reference changed from "R1" to "R2"'},
                    {"text": 'Reference changed from "R0" to "R1"'}, {"text": 'Reference changed from "" to "R0"'}]
    oldest = trail(fresh_client, 7, orderBy="enteredDate asc")
    assert oldest[0]["text"].endswith("created")
    forward = fresh_client.get("/system/audittrail", params={"type": "Invoice", "id": 7},
                               headers={"pagination-type": "forward-only"})
    assert forward.status_code == 200 and forward.json() == entries


def test_other_known_types_and_unknown_ids_answer_an_empty_list(client):
    assert trail(client, 999999) == []
    assert client.get("/system/audittrail", params={"type": "Ticket", "id": 1}).json() == []
    device = client.get("/system/audittrail", params={"type": "Configuration", "id": 1, "deviceIdentifier": "x"})
    assert device.status_code == 200 and device.json() == []


def test_bad_parameters_are_400_and_writes_405(client):
    error = model("ErrorResponseMessage")
    for params in ({"id": 1}, {"type": "Invoice"}, {"type": "Nope", "id": 1}, {"type": "Invoice", "id": "x"},
                   {"type": "Invoice", "id": 1, "conditions": "nope = 1"}, {"type": "Invoice", "id": 1, "page": "0"}):
        response = client.get("/system/audittrail", params=params)
        assert response.status_code == 400, (params, response.text)
        check(error, response.json())
    assert client.post("/system/audittrail", params={"type": "Invoice", "id": 1}, json={}).status_code == 405
    assert client.get("/system/audittrail/nothing", params={"type": "Invoice", "id": 1}).status_code == 404


def test_the_type_is_matched_without_case(client):
    assert trail(client, 4) == client.get("/system/audittrail", params={"type": "invoice", "id": 4}).json()


def test_reset_restores_the_seeded_history(fresh_sim, fresh_client):
    seeded = trail(fresh_client, 2)
    fresh_client.patch("/finance/invoices/2", json=[{"op": "replace", "path": "reference", "value": "X"}])
    assert len(trail(fresh_client, 2)) == len(seeded) + 1
    fresh_sim.state.reset()
    assert trail(fresh_client, 2) == seeded


def test_the_trail_is_behind_authentication(sim):
    import httpx

    assert httpx.get(sim.api_url + "/system/audittrail", params={"type": "Invoice", "id": 1}).status_code == 401


def test_deletes_are_on_the_trail(fresh_client):
    product = a_line_with_an_invoice(fresh_client, "/procurement/products")
    invoice_id = product["invoice"]["id"]
    assert fresh_client.delete(f"/procurement/products/{product['id']}").status_code == 204
    said = trail(fresh_client, invoice_id)[0]
    assert (said["text"], said["enteredBy"], said["auditSubType"]) == (
        f"Product {product['id']} deleted", API_MEMBER, "Product")
    own = fresh_client.get("/system/audittrail", params={"type": "ProductItem", "id": product["id"]}).json()
    assert own[0]["text"] == f"Product {product['id']} deleted"
    number = fresh_client.get(f"/finance/invoices/{invoice_id}").json()["invoiceNumber"]
    assert fresh_client.delete(f"/finance/invoices/{invoice_id}").status_code == 204
    assert trail(fresh_client, invoice_id)[0]["text"] == f"Invoice {number} deleted"
