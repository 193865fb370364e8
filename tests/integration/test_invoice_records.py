"""The record layer against the simulator: the list and the invoice's own page name every invoice's type alike,
every printed line knows the ConnectWise records it prints, and every record keeps its id and lastUpdated."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from app.connectwise import records
from app.connectwise.client import Client, Credentials
from app.invoices.listing import InvoiceQuery, list_invoices
from app.invoices.service import reconstruct

CLIENT_ID = "6f1b5c9e-0000-4000-8000-000000000001"
LINE_KINDS = {"products": "product", "timeEntries": "time", "expenseEntries": "expense"}


def make(sim, **kwargs) -> Client:  # type: ignore[no-untyped-def]
    return Client(Credentials(sim.url, sim.company_id, sim.public_key, sim.private_key), CLIENT_ID,
                  allow_loopback_http=True, sleep=lambda s: None, **kwargs)


class FirstRowTotalAsText(httpx.HTTPTransport):
    """The real simulator, except that the invoice list's first row carries its total as text."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not request.url.path.endswith("/finance/invoices"):
            return response
        response.read()
        body = json.loads(response.content)
        body[0] = {**body[0], "total": "1,234.00"}
        return httpx.Response(response.status_code, content=json.dumps(body).encode(),
                              headers={"content-type": "application/json", "link": response.headers.get("link", "")})


@pytest.fixture(scope="module")
def listed_and_built(sim):  # type: ignore[no-untyped-def]
    """Every simulator invoice as the invoices list shows it and as its own page builds it."""
    sim.reset()
    with make(sim) as cw:
        rows = {}
        for page in range(1, 6):
            rows.update({row.id: row for row in list_invoices(cw, InvoiceQuery(page=page), page_size=100).rows})
        docs = {i: reconstruct(cw, i) for i in sim.state.data["invoices"].ids()}
    return rows, docs


def test_the_list_and_the_invoice_page_name_every_simulator_invoice_type_alike(listed_and_built):
    rows, docs = listed_and_built
    assert len(rows) == len(docs) == 500
    disagree = {i: (rows[i].type_label, doc.display_type) for i, doc in docs.items()
                if rows[i].type_label != doc.display_type}
    assert disagree == {}
    assert "Fixed Fee" in {row.type_label for row in rows.values()}


def test_every_time_entry_product_and_expense_is_in_exactly_one_printed_line(listed_and_built, sim):
    _rows, docs = listed_and_built
    data = sim.state.data
    setup = data["billingSetups"].get(1)
    skipped = {"product": setup["excludeDoNotBillProductFlag"], "expense": setup["excludeDoNotBillExpenseFlag"],
               "time": setup["excludeDoNotBillTimeFlag"]}
    expected: dict[int, set[tuple[str, int]]] = {i: set() for i in docs}
    for table, kind in LINE_KINDS.items():
        for record_id in data[table].ids():
            record = data[table].get(record_id)
            invoice = (record.get("invoice") or {}).get("id")
            if invoice in expected and not (skipped[kind] and record.get("billableOption") == "DoNotBill"):
                expected[invoice].add((kind, record_id))
    assert sum(len(v) for v in expected.values()) > 1000
    for invoice_id, doc in docs.items():
        printed = Counter(source for section in doc.sections for line in section.lines for source in line.sources
                          if source[0] in LINE_KINDS.values())
        assert set(printed) == expected[invoice_id], invoice_id
        assert all(n == 1 for n in printed.values()), invoice_id


def test_agreement_additions_and_payments_name_their_records_and_header_figures_name_none(listed_and_built):
    _rows, docs = listed_and_built
    kinds = Counter(source[0] for doc in docs.values() for section in doc.sections for line in section.lines
                    for source in line.sources)
    assert kinds["addition"] and kinds["payment"]
    for doc in docs.values():
        adjustments = doc.section("adjustments")
        assert adjustments is None or all(line.sources == () for line in adjustments.lines)


def test_a_list_row_with_an_unreadable_total_is_listed_marked_without_a_made_up_amount(sim):
    with make(sim, transport=FirstRowTotalAsText()) as cw:
        rows = list_invoices(cw, InvoiceQuery(), page_size=10).rows
    assert len(rows) == 10
    assert rows[0].degraded == ("total",) and rows[0].total == "\u2014" and "$" in rows[0].balance
    assert all(row.degraded == () and any(symbol in row.total for symbol in "$\u20ac\u00a5") for row in rows[1:])


@pytest.mark.parametrize(("path", "fields", "parse"), [
    ("procurement/products", records.PRODUCT_FIELDS, records.ProductRecord.parse),
    ("time/entries", records.TIME_FIELDS, records.TimeRecord.parse),
    ("expense/entries", records.EXPENSE_FIELDS, records.ExpenseRecord.parse),
    ("finance/invoices/3/routings", records.ROUTING_FIELDS, records.RoutingRecord.parse),
    ("finance/billingStatuses", records.BILLING_STATUS_FIELDS, records.BillingStatusRecord.parse),
    ("system/members", records.MEMBER_FIELDS, lambda r: records.Member.from_api(r)),
])
def test_records_read_through_their_projection_keep_their_id_and_last_updated(sim, path, fields, parse):
    with make(sim) as cw:
        raw = cw.get_all(path, fields=fields)
    parsed = [parse(r) for r in raw]
    assert parsed and all(p is not None and p.id == r["id"] for p, r in zip(parsed, raw, strict=True))
    assert all(p.last_updated is not None and p.last_updated.tzinfo is not None for p in parsed)
    assert all(p.degraded == () for p in parsed)
