"""The seed bills the ways real ConnectWise does: by phase, by sales order, fixed-fee tickets, agreement time."""

from __future__ import annotations

import pytest

from cwsim.seed import build_dataset
from tests.cwsim.conftest import fetch_all


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return build_dataset(1, 500)


def rows(data, table):  # type: ignore[no-untyped-def]
    return [data[table].get(i) for i in data[table].ids()]


def test_some_invoices_bill_a_project_phase_with_its_reference(data):
    phased = [i for i in rows(data, "invoices") if i["applyToType"] == "ProjectPhase"]
    assert phased
    for invoice in phased:
        assert invoice["type"] == "Standard" and invoice["project"]["id"]
        assert invoice["applyToId"] == invoice["phase"]["id"] and invoice["phase"]["name"]


def test_some_invoices_bill_a_sales_order_with_its_reference(data):
    orders = [i for i in rows(data, "invoices") if i["applyToType"] == "SalesOrder"]
    assert orders
    for invoice in orders:
        assert invoice["salesOrder"]["identifier"].startswith("SO-")
        assert invoice["applyToId"] == invoice["salesOrder"]["id"]


def test_fixed_fee_tickets_are_billed_at_the_fee(data):
    tickets = {t["id"]: t for t in rows(data, "tickets")}
    fixed = [i for i in rows(data, "invoices")
             if i["applyToType"] == "Ticket" and tickets[i["applyToId"]]["billingMethod"] == "FixedFee"]
    billed_at_fee = [i for i in fixed if i.get("adjustmentReason") == "Fixed fee"]
    assert billed_at_fee
    for invoice in billed_at_fee:
        # The fee is a round amount: services plus the fixed-fee adjustment.
        fee = invoice["serviceTotal"] + invoice["serviceAdjustmentAmount"]
        assert fee % 100 == pytest.approx(0, abs=0.01)


def test_agreement_time_carries_covered_hours_and_charges_only_the_overage(data):
    covered = [t for t in rows(data, "timeEntries") if t.get("agreementHours")]
    assert len(covered) > 20
    assert any(t["invoiceHours"] > t["agreementHours"] for t in covered)  # some overage
    assert any(t["invoiceHours"] == t["agreementHours"] for t in covered)  # some fully covered
    for entry in covered:
        assert entry["agreement"]["id"] and entry["overageRate"] == entry["hourlyRate"]
        overage = entry["invoiceHours"] - entry["agreementHours"]
        assert entry["extendedInvoiceAmount"] == pytest.approx(overage * entry["overageRate"], abs=0.01)
        # Rounded to the currency (0 decimals for JPY).
        assert entry["agreementAmount"] == pytest.approx(entry["agreementHours"] * entry["hourlyRate"], abs=0.5)


def test_agreement_time_reaches_the_wire_with_its_agreement_fields(client):
    entries = fetch_all(client, "/time/entries", conditions="agreementHours > 0")
    assert entries
    assert all({"agreement", "agreementHours", "agreementAmount", "overageRate"} <= e.keys() for e in entries)


def test_some_invoices_have_a_credit_memo_applied_as_a_credit(data):
    credited = [i for i in rows(data, "invoices") if i["credits"]]
    assert credited
    payments = rows(data, "payments")
    for invoice in credited:
        applied = [p for p in payments if p["invoice"]["id"] == invoice["id"] and "credit" in p]
        assert len(applied) == 1 and applied[0]["type"] == "Credit"
        assert applied[0]["credit"]["billingType"] == "CreditMemo"
        assert applied[0]["amount"] == invoice["credits"]
        assert invoice["balance"] == pytest.approx(invoice["total"] - invoice["payments"] - invoice["credits"],
                                                   abs=0.005)


def test_some_invoices_are_void_with_the_figures_connectwise_keeps(data):
    void = [i for i in rows(data, "invoices") if i["status"]["name"] == "Void"]
    assert void
    for invoice in void:
        assert invoice["type"] != "CreditMemo" and not invoice["payments"]
        assert invoice["balance"] == pytest.approx(invoice["total"], abs=0.005)


def test_some_invoices_are_partly_paid_with_their_payment(data):
    partly = [i for i in rows(data, "invoices") if 0 < i["payments"] < i["total"]]
    assert partly and any(i["id"] == 16 for i in partly)  # the head's partially_paid case
    payments = rows(data, "payments")
    for invoice in partly:
        paid = [p for p in payments if p["invoice"]["id"] == invoice["id"] and "credit" not in p]
        assert sum(p["amount"] for p in paid) == pytest.approx(invoice["payments"], abs=0.005)
        assert all(p["paymentDate"] for p in paid)
