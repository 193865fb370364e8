"""Reconstruction against the simulator: ConnectWise's totals on every invoice, sections like ConnectWise's,
two rounds of requests, the cache, display types, currencies, and typed errors for bad data."""

from __future__ import annotations

import json
import logging
import threading
from decimal import Decimal

import httpx
import pytest

from app.connectwise import errors as cw_errors
from app.connectwise.client import Client, Credentials
from app.invoices.document import DISPLAY_TYPES, format_money
from app.invoices.errors import InvalidInvoiceData, InvoiceNotFound
from app.invoices.service import reconstruct

CLIENT_ID = "6f1b5c9e-0000-4000-8000-000000000001"
CHARGES = ("services", "agreement_services", "agreement", "products", "expenses", "adjustments")


def make(sim, **kwargs) -> Client:  # type: ignore[no-untyped-def]
    kwargs.setdefault("allow_loopback_http", True)
    kwargs.setdefault("sleep", lambda s: None)
    return Client(Credentials(sim.url, sim.company_id, sim.public_key, sim.private_key), CLIENT_ID, **kwargs)


def d(value) -> Decimal:  # type: ignore[no-untyped-def]
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value or 0)


@pytest.fixture(scope="module")
def everything(sim):  # type: ignore[no-untyped-def]
    """Every invoice of the simulator's data set, raw (from the simulator's own data) and reconstructed."""
    sim.reset()
    data = sim.state.data
    raw = {i: data["invoices"].get(i) for i in data["invoices"].ids()}
    with make(sim) as cw:
        docs = {i: reconstruct(cw, i) for i in raw}
    return raw, docs


def test_the_totals_we_show_equal_connectwise_totals_on_every_invoice(everything):
    raw, docs = everything
    assert len(docs) == 500
    for invoice_id, doc in docs.items():
        cw = raw[invoice_id]
        q = Decimal(1).scaleb(-doc.currency.decimals)
        totals = doc.totals
        assert (totals.subtotal, totals.tax, totals.total) == (d(cw["subtotal"]), d(cw["salesTax"]), d(cw["total"]))
        assert (totals.payments, totals.credits, totals.balance) == (
            d(cw.get("payments")), d(cw.get("credits")), d(cw["balance"]))
        assert totals.reconciled, (invoice_id, totals.mismatches)
        # The printed sections add up to ConnectWise's subtotal, and each section's lines to its subtotal.
        charged = [s for s in doc.sections if s.key in CHARGES]
        assert sum((s.subtotal for s in charged), Decimal(0)).quantize(q) == totals.subtotal.quantize(q), invoice_id
        for section in charged:
            lines = sum((line.amount for line in section.lines if line.amount is not None), Decimal(0))
            assert lines.quantize(q) == section.subtotal.quantize(q), (invoice_id, section.key)
        assert sum((t.amount for t in doc.tax_lines), Decimal(0)).quantize(q) == totals.tax.quantize(q), invoice_id


def test_every_display_type_appears_and_follows_what_the_invoice_applies_to(everything, sim):
    raw, docs = everything
    assert {doc.display_type for doc in docs.values()} == set(DISPLAY_TYPES)
    tickets = sim.state.data["tickets"]
    expected = {"Agreement": "Agreement", "CreditMemo": "Credit Memo", "DownPayment": "Down Payment",
                "Miscellaneous": "Miscellaneous", "Progress": "Progress"}
    for invoice_id, doc in docs.items():
        cw = raw[invoice_id]
        if cw["type"] != "Standard":
            want = expected[cw["type"]]
        elif cw["applyToType"] == "SalesOrder":
            want = "Sales Order"
        elif cw["applyToType"] == "ProjectPhase":
            want = "Phase"
        elif cw["applyToType"] == "Project":
            want = "Project"  # the simulator bills fixed-fee projects by progress invoices
        elif cw["applyToType"] == "Ticket" and tickets.get(cw["applyToId"])["billingMethod"] == "FixedFee":
            want = "Fixed Fee"
        else:
            want = "Standard"
        assert doc.display_type == want, invoice_id
        assert doc.cw_type == cw["type"]


@pytest.mark.parametrize(("display_type", "settings"), [
    ("Standard", "standard"), ("Fixed Fee", "fixed_fee"), ("Project", "project"), ("Phase", "project"),
    ("Sales Order", "standard"), ("Agreement", "agreement"), ("Credit Memo", "standard"),
    ("Down Payment", "standard"), ("Miscellaneous", "standard"), ("Progress", "fixed_fee")])
def test_each_display_type_picks_its_time_detail_settings(everything, display_type, settings):
    _raw, docs = everything
    doc = next(doc for doc in docs.values() if doc.display_type == display_type)
    assert doc.time_detail_type == settings


def test_header_parties_remit_to_and_tax_ids_come_from_connectwise(everything, sim):
    raw, docs = everything
    doc, cw = docs[9], raw[9]
    company = sim.state.data["companies"].get(cw["company"]["id"])
    setup = sim.state.data["billingSetups"].get(1)
    assert doc.number == cw["invoiceNumber"] and doc.terms == cw["billingTerms"]["name"]
    assert doc.bill_to.name == company["name"] and doc.bill_to.attention == cw["attention"]
    assert doc.bill_to.address[0] == cw["billingSiteAddressLine1"]
    assert doc.customer_tax_id == company["taxIdentifier"] and doc.bill_to.tax_id == company["taxIdentifier"]
    assert doc.remit_to.name == setup["remitName"] and doc.remit_to.address[0] == setup["addressOne"]
    assert doc.seller_business_number == setup["businessNumber"]
    assert doc.top_comment == cw["topComment"] and doc.tax_caption == "MwSt."
    assert docs[4].po_number == raw[4]["customerPO"] != ""


def test_billable_services_are_summarised_by_work_role_and_work_type(everything, sim):
    raw, docs = everything
    entries = [e for e in (sim.state.data["timeEntries"].get(i) for i in sim.state.data["timeEntries"].ids())
               if e["invoice"]["id"] == 16]
    services = docs[16].section("services")
    assert services is not None
    keys = {(e["workRole"]["name"], e["workType"]["name"], d(e["hourlyRate"])) for e in entries
            if e["billableOption"] == "Billable"}
    assert {(line.description, line.detail, line.rate) for line in services.lines} == keys
    assert sum(line.quantity for line in services.lines) == sum(
        d(e["invoiceHours"]) for e in entries if e["billableOption"] == "Billable")


def test_non_billable_time_is_listed_without_being_charged(everything):
    _raw, docs = everything
    section = docs[7].section("non_billable_services")
    assert section is not None and not section.counts_in_subtotal and section.subtotal is None
    assert {line.note for line in section.lines} == {"No charge", "Not billed"}
    assert all(line.amount is None for line in section.lines)


def test_agreement_time_shows_covered_and_overage_hours(everything, sim):
    raw, docs = everything
    covered = [doc for doc in docs.values() if doc.section("agreement_services")]
    assert covered
    for doc in covered:
        entries = [e for e in (sim.state.data["timeEntries"].get(i) for i in sim.state.data["timeEntries"].ids())
                   if e["invoice"]["id"] == doc.id and e.get("agreementHours")]
        lines = doc.section("agreement_services").lines
        assert sum(line.covered_quantity for line in lines) == sum(d(e["agreementHours"]) for e in entries)
        assert sum(line.quantity for line in lines) == sum(
            d(e["invoiceHours"]) - d(e["agreementHours"]) for e in entries)
        break


def test_agreement_invoices_list_the_additions_that_make_the_agreement_amount(everything):
    raw, docs = everything
    doc = docs[2]
    section = doc.section("agreement")
    assert doc.display_type == "Agreement" and section.subtotal == d(raw[2]["agreementAmount"])
    assert len(section.lines) >= 2 and all(line.quantity and line.rate for line in section.lines)


def test_adjustments_and_down_payments_show_as_connectwise_applies_them(everything):
    raw, docs = everything
    progress = docs[12].section("adjustments")
    amounts = {line.description: line.amount for line in progress.lines}
    assert amounts["Down payment applied"] == -d(raw[12]["downpaymentApplied"])
    assert amounts[raw[12]["adjustmentReason"]] == d(raw[12]["serviceAdjustmentAmount"])


def test_payments_are_listed_and_the_balance_is_connectwise_balance(everything):
    raw, docs = everything
    doc = docs[16]
    payments = doc.section("payments")
    assert payments is not None and payments.subtotal == d(raw[16]["payments"]) > 0
    assert payments.lines[0].date is not None
    assert doc.totals.balance == d(raw[16]["balance"]) > 0


def test_applied_credit_memos_are_listed_as_credits(everything):
    raw, docs = everything
    credited = [i for i, cw in raw.items() if cw.get("credits")]
    assert credited
    for invoice_id in credited:
        doc = docs[invoice_id]
        section = doc.section("credits")
        assert section is not None and section.subtotal == d(raw[invoice_id]["credits"]) == doc.totals.credits
        assert section.lines[0].detail == "INV-10011" and section.lines[0].amount == section.subtotal
        assert doc.section("payments") is None or doc.totals.payments


def test_time_detail_is_grouped_by_ticket(everything, sim):
    _raw, docs = everything
    doc = docs[16]
    entries = [e for e in (sim.state.data["timeEntries"].get(i) for i in sim.state.data["timeEntries"].ids())
               if e["invoice"]["id"] == 16]
    assert {g.ticket_id for g in doc.time_detail} == {e["ticket"]["id"] for e in entries}
    for group in doc.time_detail:
        ids = {e["id"] for e in entries if e["ticket"]["id"] == group.ticket_id}
        assert {e.id for e in group.entries} == ids
        assert group.ticket_number == f"#{group.ticket_id}" and group.summary
        assert group.hours == sum(e.hours for e in group.entries)


def test_currencies_format_the_connectwise_way(everything):
    raw, docs = everything
    eur, jpy = docs[9].currency, docs[10].currency
    assert (eur.code, eur.decimals, eur.decimal_sep, eur.group_sep, eur.symbol_first) == ("EUR", 2, ",", ".", False)
    assert (jpy.code, jpy.decimals, jpy.symbol) == ("JPY", 0, "¥")
    # An independent formatting of ConnectWise's own figures: Python's, with the separators swapped.
    total = raw[9]["total"]
    assert format_money(docs[9].totals.total, eur) == (
        f"{total:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".") + "\u00a0€")
    assert format_money(docs[10].totals.total, jpy) == f"¥{raw[10]['total']:,.0f}"
    assert all(line.amount == line.amount.to_integral_value() for s in docs[10].sections for line in s.lines
               if line.amount is not None)


# -- requests ----------------------------------------------------------------------------------------------------


class RoundCounter(Client):
    """Counts requests made outside Client.parallel (sequential) and parallel batches."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.local = threading.local()
        self.sequential: list[str] = []
        self.batches = 0
        self.after_batch = 0

    def parallel(self, calls):  # type: ignore[no-untyped-def]
        self.batches += 1
        try:
            self.local.inside = True
            return super().parallel([self._mark(c) for c in calls])
        finally:
            self.local.inside = False

    def _mark(self, call):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            self.local.inside = True
            return call()
        return run

    def _request(self, method, url, **kwargs):  # type: ignore[no-untyped-def]
        if not getattr(self.local, "inside", False):
            if self.batches:
                self.after_batch += 1
            self.sequential.append(url)
        return super()._request(method, url, **kwargs)


@pytest.mark.parametrize("invoice_id", [1, 9, 12, 16])
def test_an_invoice_takes_two_sequential_rounds_of_requests(sim, invoice_id):
    with RoundCounter(Credentials(sim.url, sim.company_id, sim.public_key, sim.private_key), CLIENT_ID,
                      allow_loopback_http=True) as cw:
        assert cw.api_base  # discovery happens once per client, before any invoice
        cw.sequential.clear()
        reconstruct(cw, invoice_id)
    assert len(cw.sequential) == 1 and cw.sequential[0].endswith(f"/finance/invoices/{invoice_id}")
    assert cw.batches == 1 and cw.after_batch == 0


def test_a_second_render_is_served_from_the_client_cache(sim, redis_conn):
    with make(sim, redis=redis_conn, tenant_id="t-cache") as cw:
        first = reconstruct(cw, 16)
        made = cw.requests_made
        second = reconstruct(cw, 16)
        assert cw.requests_made == made
    assert first == second


# -- when ConnectWise and we disagree ----------------------------------------------------------------------------


def test_when_lines_disagree_with_the_header_we_show_connectwise_figures_and_log_why(fresh_sim, caplog):
    data = fresh_sim.state.data
    product = next(p for p in (data["products"].get(i) for i in data["products"].ids()) if p["invoice"]["id"] == 3)
    invoice = data["invoices"].get(3)
    # The line no longer adds up to the invoice's productTotal. An edit through the API would recompute the header,
    # as ConnectWise does, so the disagreement (seen on real data, e.g. after an accounting export) is set in the
    # simulator's data directly.
    price = product["price"] + 100
    data["products"].set_fields(product["id"], {"price": price, "extPrice": round(price * product["quantity"], 2)})
    caplog.set_level(logging.INFO, logger="app.invoices")
    with make(fresh_sim) as cw:
        doc = reconstruct(cw, 3)
    assert not doc.totals.reconciled and "productTotal" in doc.totals.mismatches
    assert doc.section("products").subtotal == d(invoice["productTotal"])
    assert (doc.totals.subtotal, doc.totals.total) == (d(invoice["subtotal"]), d(invoice["total"]))
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("app.invoices")]
    assert any("invoice 3" in m and "productTotal" in m for m in messages)
    text = " ".join(messages)
    company = data["companies"].get(invoice["company"]["id"])
    for secret in (company["name"], product["description"], str(invoice["total"]), invoice["invoiceNumber"]):
        assert secret not in text


def test_tax_that_cannot_be_rebuilt_by_level_shows_connectwise_tax_as_one_line(fresh_sim, caplog):
    data = fresh_sim.state.data
    invoice = data["invoices"].get(3)
    taxable = [p for p in (data["products"].get(i) for i in data["products"].ids())
               if p["invoice"]["id"] == 3 and p["taxableFlag"]]
    # Lines whose taxable flags no longer explain the header's tax levels; set in the simulator's data, since an API
    # edit would recompute the header's tax (as ConnectWise does).
    for product in taxable:
        data["products"].set_fields(product["id"], {"taxableFlag": False})
    caplog.set_level(logging.WARNING, logger="app.invoices")
    with make(fresh_sim) as cw:
        doc = reconstruct(cw, 3)
    assert [t.amount for t in doc.tax_lines] == [d(invoice["salesTax"])]
    assert doc.tax_lines[0].caption and "salesTax levels" in doc.totals.mismatches
    assert any("salesTax levels" in r.getMessage() for r in caplog.records)


# -- bad data from ConnectWise -----------------------------------------------------------------------------------


def test_a_missing_invoice_is_invoice_not_found(fresh_sim):
    with make(fresh_sim) as cw, pytest.raises(InvoiceNotFound, match="no invoice 99999"):
        reconstruct(cw, 99999)


def test_a_truncated_response_is_a_connectwise_error_not_a_crash(fresh_sim):
    with make(fresh_sim, max_retries=1) as cw:
        assert cw.api_base
        fresh_sim.configure(malformed_next=10)
        with pytest.raises(cw_errors.MalformedResponse):
            reconstruct(cw, 9)


def test_a_connectwise_outage_propagates_as_a_connectwise_error(fresh_sim):
    with make(fresh_sim, max_retries=1) as cw:
        assert cw.api_base
        fresh_sim.configure(error_rate=1.0, error_status=503)
        with pytest.raises(cw_errors.Unavailable):
            reconstruct(cw, 9)


class Tamper(httpx.HTTPTransport):
    """Passes requests to the real simulator and rewrites the JSON of the responses ``edit`` picks."""

    def __init__(self, edit):  # type: ignore[no-untyped-def]
        super().__init__()
        self.edit = edit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if "/apis/3.0/" not in request.url.path:
            return response
        response.read()
        body = self.edit(request.url.path.split("/apis/3.0/", 1)[1], json.loads(response.content))
        # json.dumps writes a non-finite float as Infinity, which Python's json (and httpx) read back.
        return httpx.Response(response.status_code, content=json.dumps(body).encode(),
                              headers={"content-type": "application/json", "link": response.headers.get("link", "")})


def _set(path_wanted: str, change):  # type: ignore[no-untyped-def]
    def edit(path, body):  # type: ignore[no-untyped-def]
        if path == path_wanted:
            return change(body)
        return body
    return edit


def _with(key, value):  # type: ignore[no-untyped-def]
    def change(body):  # type: ignore[no-untyped-def]
        body = dict(body)
        body[key] = value
        return body
    return change


BAD = {
    "an amount that is text": (_set("finance/invoices/9", _with("total", "2309.02")), "total is not a number"),
    "an amount that is not finite": (_set("finance/invoices/9", _with("subtotal", 1e400)), "subtotal"),
    "no company": (_set("finance/invoices/9", lambda b: {k: v for k, v in b.items() if k != "company"}),
                   "without company/id"),
    "an id that is text": (_set("finance/invoices/9", _with("company", {"id": "273"})), "company/id"),
    "an invoice that is a list": (_set("finance/invoices/9", lambda b: [b]), "not an object"),
    "another invoice": (_set("finance/invoices/9", _with("id", 10)), "another invoice"),
    "absurd currency decimals": (_set("finance/invoices/9", lambda b: {**b, "currency": {**b["currency"],
                                                                                         "numberOfDecimals": 42}}),
                                 "numberOfDecimals"),
    "a line that is not an object": (_set("time/entries", lambda b: [*b, "oops"]), "time entry"),
    "hours that are text": (_set("time/entries", lambda b: [{**b[0], "hourlyRate": "lots"}, *b[1:]]),
                            "hourlyRate is not a number"),
    "a date that is not a date": (_set("finance/invoices/9", _with("dueDate", "next Tuesday")), "dueDate"),
    "a tax code with a text rate": (_set("finance/taxCodes/4", _with("levelOneRate", "19%")), "levelOneRate"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_data_from_connectwise_is_a_typed_error(fresh_sim, case):
    edit, message = BAD[case]
    with make(fresh_sim, transport=Tamper(edit)) as cw, pytest.raises(InvalidInvoiceData) as caught:
        reconstruct(cw, 9)
    assert message in str(caught.value)
    assert isinstance(caught.value, cw_errors.ConnectWiseError)  # pages treat it like any ConnectWise failure
    assert "Werkstatt" not in str(caught.value) and "2309" not in str(caught.value)


def test_missing_optional_context_degrades_instead_of_failing(fresh_sim):
    def edit(path, body):  # type: ignore[no-untyped-def]
        return body

    class NoSetup(Tamper):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if "/finance/billingSetups/" in request.url.path:
                return httpx.Response(404, json={"code": "NotFound", "message": "BillingSetup 1 not found"})
            return super().handle_request(request)

    with make(fresh_sim, transport=NoSetup(edit)) as cw:
        doc = reconstruct(cw, 9)
    assert doc.remit_to is None and doc.seller_business_number == "" and doc.totals.reconciled
