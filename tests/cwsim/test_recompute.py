"""Editing a line (or the invoice) recomputes the invoice's header totals, tax and balance by the seed's own formula,
and bumps lastUpdated on the line and on the invoice, as ConnectWise does; exported invoices' lines are closed to
edits; a read-only security role (forbidden_writes) answers 403 to writes only."""

from __future__ import annotations

import time

from cwsim import totals
from cwsim.seed import build_dataset

AMOUNTS = ("serviceTotal", "productTotal", "expenseTotal", "subtotal", "salesTax", "total", "balance")


def test_every_seeded_invoice_adds_up_by_the_recompute_formula():
    data = build_dataset(1, 60)
    for invoice in list(data["invoices"].iter()):
        before = {k: invoice[k] for k in AMOUNTS}
        after = totals.recompute_invoice(data, invoice["id"], stamp=False)
        assert after is not None
        assert {k: after[k] for k in AMOUNTS} == before, invoice["invoiceNumber"]


def _open_invoice_with(client, path: str) -> tuple[dict, dict]:
    """A line at ``path`` on an invoice that is not exported, with tax on it."""
    for invoice in client.get("/finance/invoices", params={"conditions": "glBatch/id = null and salesTax > 0",
                                                           "pageSize": 100}).json():
        lines = client.get(f"/{path}", params={"conditions": f"invoice/id={invoice['id']}"}).json()
        billable = [line for line in lines if line.get("billableOption") == "Billable"]
        if billable:
            return invoice, billable[0]
    raise AssertionError(f"no open taxed invoice with a billable line in {path}")


def test_a_product_price_edit_recomputes_subtotal_tax_total_and_balance(fresh_client):
    invoice, product = _open_invoice_with(fresh_client, "procurement/products")
    time.sleep(1.05)  # lastUpdated has whole seconds
    new_price = product["price"] + 100.0
    patched = fresh_client.patch(f"/procurement/products/{product['id']}",
                                 json=[{"op": "replace", "path": "price", "value": new_price}])
    assert patched.status_code == 200, patched.text
    line = patched.json()
    assert line["extPrice"] == round(product["quantity"] * new_price, 2)
    after = fresh_client.get(f"/finance/invoices/{invoice['id']}").json()
    added = line["extPrice"] - product["extPrice"]
    assert round(after["productTotal"] - invoice["productTotal"], 2) == round(added, 2)
    assert round(after["subtotal"] - invoice["subtotal"], 2) == round(added, 2)
    assert after["total"] == round(after["subtotal"] + after["salesTax"], 2)
    if product["taxableFlag"]:
        assert after["salesTax"] > invoice["salesTax"]
    assert after["balance"] == round(after["total"] - after.get("payments", 0.0) - after.get("credits", 0.0), 2)
    assert line["_info"]["lastUpdated"] > product["_info"]["lastUpdated"]
    assert after["_info"]["lastUpdated"] > invoice["_info"]["lastUpdated"]


def test_marking_time_no_charge_takes_it_off_the_service_total(fresh_client):
    invoice, entry = _open_invoice_with(fresh_client, "time/entries")
    patched = fresh_client.patch(f"/time/entries/{entry['id']}",
                                 json=[{"op": "replace", "path": "billableOption", "value": "NoCharge"}]).json()
    assert patched["extendedInvoiceAmount"] == 0.0
    after = fresh_client.get(f"/finance/invoices/{invoice['id']}").json()
    assert round(invoice["serviceTotal"] - after["serviceTotal"], 2) == round(entry["extendedInvoiceAmount"], 2)
    assert after["total"] < invoice["total"]


def test_invoice_hours_edit_charges_the_new_hours(fresh_client):
    invoice, entry = _open_invoice_with(fresh_client, "time/entries")
    patched = fresh_client.patch(f"/time/entries/{entry['id']}",
                                 json=[{"op": "replace", "path": "invoiceHours", "value": 7.5}]).json()
    charged = max(7.5 - (entry.get("agreementHours") or 0.0), 0.0)
    assert patched["extendedInvoiceAmount"] == round(charged * entry["hourlyRate"], 2)
    after = fresh_client.get(f"/finance/invoices/{invoice['id']}").json()
    assert round(after["serviceTotal"] - invoice["serviceTotal"], 2) == round(
        patched["extendedInvoiceAmount"] - entry["extendedInvoiceAmount"], 2)


def test_an_expense_made_do_not_bill_leaves_the_expense_total(fresh_client):
    invoice, expense = _open_invoice_with(fresh_client, "expense/entries")
    patched = fresh_client.patch(f"/expense/entries/{expense['id']}",
                                 json=[{"op": "replace", "path": "billableOption", "value": "DoNotBill"}]).json()
    assert patched["invoiceAmount"] == 0.0
    after = fresh_client.get(f"/finance/invoices/{invoice['id']}").json()
    assert round(invoice["expenseTotal"] - after["expenseTotal"], 2) == round(expense["invoiceAmount"], 2)


def test_a_text_edit_changes_no_amount_but_bumps_the_invoice(fresh_client):
    invoice, product = _open_invoice_with(fresh_client, "procurement/products")
    time.sleep(1.05)
    fresh_client.patch(f"/procurement/products/{product['id']}",
                       json=[{"op": "replace", "path": "customerDescription", "value": "Reworded"}])
    after = fresh_client.get(f"/finance/invoices/{invoice['id']}").json()
    assert {k: after[k] for k in AMOUNTS} == {k: invoice[k] for k in AMOUNTS}
    assert after["_info"]["lastUpdated"] > invoice["_info"]["lastUpdated"]


def test_a_line_on_an_exported_invoice_is_closed_to_edits(fresh_client):
    exported = fresh_client.get("/finance/invoices", params={"conditions": "glBatch/id != null"}).json()
    for invoice in exported:
        lines = fresh_client.get("/time/entries", params={"conditions": f"invoice/id={invoice['id']}"}).json()
        if lines:
            break
    else:
        raise AssertionError("an exported invoice with time on it")
    response = fresh_client.patch(f"/time/entries/{lines[0]['id']}",
                                  json=[{"op": "replace", "path": "notes", "value": "Changed"}])
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "InvoiceClosed"
    assert fresh_client.get(f"/time/entries/{lines[0]['id']}").json()["notes"] == lines[0]["notes"]


def test_forbidden_writes_refuse_the_patch_but_not_the_read(fresh_sim, fresh_client):
    fresh_sim.configure(forbidden_writes="procurement/products")
    product = fresh_client.get("/procurement/products", params={"conditions": "invoice/id=3"}).json()[0]
    assert fresh_client.get(f"/procurement/products/{product['id']}").status_code == 200
    response = fresh_client.patch(f"/procurement/products/{product['id']}",
                                  json=[{"op": "replace", "path": "price", "value": 1.0}])
    assert response.status_code == 403
    assert fresh_client.get(f"/procurement/products/{product['id']}").json()["price"] == product["price"]
