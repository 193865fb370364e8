"""The seeded data set: determinism, scale, amounts that add up, and the review-rule cases."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from cwsim.seed import build_dataset
from tests.cwsim.conftest import fetch_all

LEVELS = ["One", "Two", "Three", "Four", "Five", "Six"]


def dump(data, table):
    return [data[table].get(i) for i in data[table].ids()]


def test_same_seed_builds_the_same_data():
    a, b = build_dataset(7, 80), build_dataset(7, 80)
    for table in ("invoices", "products", "timeEntries", "expenseEntries", "companies", "agreements"):
        assert dump(a, table) == dump(b, table)


def test_different_seeds_build_different_data():
    a, b = build_dataset(1, 80), build_dataset(2, 80)
    assert dump(a, "timeEntries") != dump(b, "timeEntries")


def test_ten_thousand_invoices_build_in_a_few_seconds():
    started = time.perf_counter()
    data = build_dataset(1, 10_000)
    assert time.perf_counter() - started < 6
    assert len(data["invoices"].ids()) == 10_000
    assert len(data["timeEntries"].ids()) > 20_000


def test_believable_msp_size(client):
    assert client.get("/company/companies/count").json()["count"] >= 20
    members = fetch_all(client, "/system/members")
    assert len(members) >= 15 and any(m["inactiveFlag"] for m in members)
    assert all(m["primaryEmail"] and m["identifier"] for m in members)
    companies = fetch_all(client, "/company/companies", conditions="isVendorFlag = false")
    assert all(c.get("addressLine1") and c.get("site") for c in companies)
    assert sum(bool(c.get("taxIdentifier")) for c in companies) >= 20


def test_every_invoice_type_is_present(client):
    types = {r["type"] for r in fetch_all(client, "/finance/invoices")}
    assert types >= {"Standard", "Agreement", "CreditMemo", "DownPayment", "Miscellaneous", "Progress"}
    apply_to = {r["applyToType"] for r in fetch_all(client, "/finance/invoices")}
    assert apply_to >= {"All", "Agreement", "Project", "Ticket"}


def test_most_invoices_are_open_some_paid_and_partially_paid(client):
    invoices = fetch_all(client, "/finance/invoices")
    open_ = [i for i in invoices if not i["status"]["isClosed"]]
    assert len(open_) > len(invoices) / 2
    assert any(i["balance"] == 0 and i["payments"] > 0 for i in invoices)
    assert any(0 < i["payments"] < i["total"] for i in invoices)


def billable(row: dict) -> bool:
    return row["billableOption"] == "Billable"


def by_invoice(rows: list[dict], invoice_id: int) -> list[dict]:
    return [r for r in rows if r["invoice"]["id"] == invoice_id]


def _sum(items, key, where=lambda _: True):
    return sum(i.get(key, 0.0) for i in items if where(i))


def test_amounts_add_up_on_every_invoice(client):
    tax_codes = {t["id"]: t for t in fetch_all(client, "/finance/taxCodes")}
    invoices = fetch_all(client, "/finance/invoices")
    products = fetch_all(client, "/procurement/products")
    times = fetch_all(client, "/time/entries")
    expenses = fetch_all(client, "/expense/entries")
    for inv in invoices:
        dec = inv["currency"]["numberOfDecimals"]
        tol = 0.5 * 10**-dec + 1e-9
        p, t, e = (by_invoice(rows, inv["id"]) for rows in (products, times, expenses))
        for entry in t:
            # Agreement time charges only the hours the agreement does not cover, at the overage rate.
            charged = entry["invoiceHours"] - entry.get("agreementHours", 0.0)
            rate = entry.get("overageRate") or entry["hourlyRate"]
            expected = charged * rate if entry["billableOption"] == "Billable" else 0
            assert entry.get("extendedInvoiceAmount", 0.0) == pytest.approx(expected, abs=tol)
        for line in p:
            assert line["extPrice"] == pytest.approx(line["price"] * line["quantity"], abs=tol)
        service = _sum(t, "extendedInvoiceAmount")
        product = _sum(p, "extPrice", billable)
        expense = _sum(e, "invoiceAmount", billable)
        assert inv.get("serviceTotal", 0.0) == pytest.approx(service, abs=tol * 10)
        assert inv.get("productTotal", 0.0) == pytest.approx(product, abs=tol * 10)
        assert inv.get("expenseTotal", 0.0) == pytest.approx(expense, abs=tol * 10)
        subtotal = (
            service
            + product
            + expense
            + inv.get("agreementAmount", 0.0)
            + inv.get("serviceAdjustmentAmount", 0.0)
            - inv.get("previousProgressApplied", 0.0)
            - inv.get("downpaymentApplied", 0.0)
        )
        assert inv["subtotal"] == pytest.approx(subtotal, abs=tol * 10), inv["id"]
        tax = 0.0
        if "taxCode" in inv:
            code = tax_codes[inv["taxCode"]["id"]]
            services = subtotal - product - expense
            taxable_products = _sum(p, "extPrice", lambda r: billable(r) and r["taxableFlag"])
            for word in LEVELS:
                if f"level{word}Rate" in code:
                    base = (
                        (services if code[f"level{word}ServicesFlag"] else 0)
                        + (taxable_products if code[f"level{word}ProductsFlag"] else 0)
                        + (expense if code[f"level{word}ExpensesFlag"] else 0)
                    )
                    tax += round(base * code[f"level{word}Rate"] / 100, dec)
        assert inv.get("salesTax", 0.0) == pytest.approx(tax, abs=tol * 10), inv["id"]
        assert inv["total"] == pytest.approx(inv["subtotal"] + inv.get("salesTax", 0.0), abs=tol)
        assert inv["balance"] == pytest.approx(
            inv["total"] - inv.get("payments", 0.0) - inv.get("credits", 0.0), abs=tol
        )
        payments = client.get(f"/finance/invoices/{inv['id']}/payments").json()
        received = [p for p in payments if "credit" not in p]
        credits = [p for p in payments if "credit" in p]
        assert _sum(received, "amount") == pytest.approx(inv.get("payments", 0.0), abs=tol)
        assert _sum(credits, "amount") == pytest.approx(inv.get("credits", 0.0), abs=tol)


def test_credit_memos_are_negative_except_the_flagged_one(client, sim):
    memos = fetch_all(client, "/finance/invoices", conditions='type = "CreditMemo"')
    positive = [m["id"] for m in memos if m["total"] > 0]
    assert positive == sim.state.data.cases["credit_memo_positive_total"]
    assert len(memos) > len(positive)


def test_review_rule_cases_exist(client, sim):
    cases = sim.state.data.cases
    lines = lambda path, iid: client.get(path, params={"conditions": f"invoice/id={iid}"}).json()  # noqa: E731
    below = lines("/procurement/products", cases["below_cost_product"][0])
    assert any(p["price"] < p["cost"] for p in below)
    assert any(p["price"] > p["cost"] and (p["price"] - p["cost"]) / p["price"] < 0.2 for p in below)
    notes = [t.get("notes", "") for t in lines("/time/entries", cases["time_thin_notes"][0])]
    assert "" in notes and any(0 < len(n) < 20 for n in notes)
    invoice = client.get(f"/finance/invoices/{cases['stale_time'][0]}").json()
    worked = [t["timeStart"] for t in lines("/time/entries", invoice["id"])]
    day = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    assert any((day(invoice["date"]) - day(w)).days > 60 for w in worked)
    options = {t["billableOption"] for t in lines("/time/entries", cases["non_billable_time"][0])}
    assert {"NoCharge", "DoNotBill"} <= options
    dupes = lines("/procurement/products", cases["duplicate_product_line"][0])
    keys = [(p["catalogItem"]["id"], p["description"], p["quantity"], p["price"]) for p in dupes]
    assert len(keys) != len(set(keys))
    first, second = (client.get(f"/finance/invoices/{i}").json() for i in cases["agreement_amount_changed"])
    assert first["agreement"]["id"] == second["agreement"]["id"] and first["total"] != second["total"]


def test_zero_and_comma_decimal_currencies_are_present(client, sim):
    cases = sim.state.data.cases
    jpy = client.get(f"/finance/invoices/{cases['jpy_currency'][0]}").json()
    assert jpy["currency"]["currencyCode"] == "JPY" and jpy["currency"]["numberOfDecimals"] == 0
    assert jpy["total"] == int(jpy["total"])
    eur = client.get(f"/finance/invoices/{cases['eur_currency'][0]}").json()["currency"]
    assert (eur["currencyCode"], eur["decimalSeparator"], eur["thousandsSeparator"]) == ("EUR", ",", ".")
    assert eur["symbol"] == "€"


def test_agreements_have_additions_and_tickets_have_notes(client):
    agreement = client.get("/finance/agreements", params={"pageSize": 1}).json()[0]
    assert client.get(f"/finance/agreements/{agreement['id']}/additions").json()
    ticket = client.get("/service/tickets", params={"pageSize": 1}).json()[0]
    notes = client.get(f"/service/tickets/{ticket['id']}/notes").json()
    assert notes and all(n["ticketId"] == ticket["id"] for n in notes)
    assert {t["recordType"] for t in fetch_all(client, "/service/tickets")} == {
        "ServiceTicket",
        "ProjectTicket",
    }


def test_the_work_types_time_entries_name_are_the_tenants_work_types_list(client):
    listed = fetch_all(client, "/time/workTypes")
    assert {t["name"] for t in listed if t["inactiveFlag"]} == {"Legacy Bench Repair"}
    by_id = {t["id"]: t["name"] for t in listed}
    used = {(e["workType"]["id"], e["workType"]["name"]) for e in fetch_all(client, "/time/entries")}
    assert used and all(by_id.get(i) == name for i, name in used)
    active = client.get("/time/workTypes", params={"conditions": "inactiveFlag = false", "orderBy": "name"}).json()
    assert [t["name"] for t in active] == sorted(t["name"] for t in listed if not t["inactiveFlag"])
