"""The sixteen review rules on hand-built ConnectWise payloads: each fires on its case with its severity and
numbers, stays quiet just inside its threshold, and honours on/off and its settings; settings validate."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from app.invoices.service import InvoicePayloads
from app.review.rules import (
    RULES,
    TARGET_TYPES,
    AgreementInvoice,
    History,
    SettingsError,
    build_history,
    default_settings,
    evaluate,
    validate_settings,
)

USD = {"id": 7, "symbol": "$", "currencyCode": "USD", "decimalSeparator": ".", "numberOfDecimals": 2,
       "thousandsSeparator": ",", "negativeParenthesesFlag": False, "displaySymbolFlag": True,
       "currencyIdentifier": "USD", "displayIdFlag": False, "rightAlign": False, "name": "US Dollars"}
EUR = {**USD, "id": 8, "symbol": "\u20ac", "currencyCode": "EUR", "decimalSeparator": ",",
       "thousandsSeparator": ".", "currencyIdentifier": "EUR", "rightAlign": True, "name": "Euro"}


def header(**over: Any) -> dict:
    base = {
        "id": 501, "invoiceNumber": "INV-20501", "type": "Standard",
        "status": {"id": 1, "name": "New", "isClosed": False},
        "company": {"id": 19, "identifier": "HarborMfg", "name": "Harbor Manufacturing"},
        "billToCompany": {"id": 19, "identifier": "HarborMfg", "name": "Harbor Manufacturing"},
        "applyToType": "All", "date": "2025-06-27T00:00:00Z", "dueDate": "2025-07-27T00:00:00Z",
        "topComment": "Thank you for your business.", "bottomComment": "",
        "taxCode": {"id": 3, "name": "Texas"}, "currency": USD, "serviceTotal": 0.0, "productTotal": 0.0,
        "expenseTotal": 0.0, "subtotal": 0.0, "total": 0.0, "salesTax": 0.0, "balance": 0.0,
        "billingSetupReference": {"id": 1, "name": "Default"},
        "_info": {"lastUpdated": "2025-06-28T14:05:00Z"},
    }
    return {**base, **over}


def product(pid: int = 20001, **over: Any) -> dict:
    base = {
        "id": pid, "catalogItem": {"id": 12, "identifier": "FG-60F-RNW"}, "description": "Firewall renewal",
        "customerDescription": "Firewall renewal", "sequenceNumber": 1.0, "quantity": 1.0,
        "price": 110.0, "cost": 101.2, "extPrice": 110.0, "extCost": 101.2, "billableOption": "Billable",
        "taxableFlag": True, "productClass": "NonInventory", "invoice": {"id": 501},
        "_info": {"lastUpdated": "2025-06-24T10:00:00Z"},
    }
    return {**base, **over}


def time_entry(tid: int = 100001, **over: Any) -> dict:
    base = {
        "id": tid, "company": {"id": 19}, "chargeToType": "ServiceTicket", "chargeToId": 4002,
        "ticket": {"id": 4002, "summary": "VPN drops every few minutes"},
        "member": {"id": 141, "identifier": "bchen", "name": "Brian Chen"},
        "workType": {"id": 1, "name": "Remote Support"}, "workRole": {"id": 2, "name": "Systems Engineer"},
        "timeStart": "2025-06-20T09:00:00Z", "timeEnd": "2025-06-20T10:30:00Z", "actualHours": 1.5,
        "billableOption": "Billable", "hoursBilled": 1.5, "invoiceHours": 1.5, "hourlyRate": 135.0,
        "agreementHours": 0.0, "agreementAmount": 0.0, "extendedInvoiceAmount": 202.5,
        "notes": "Replaced the failing VPN concentrator and re-keyed the site-to-site tunnel.",
        "invoice": {"id": 501}, "_info": {"lastUpdated": "2025-06-20T11:30:00Z"},
    }
    return {**base, **over}


def expense(eid: int = 3001, **over: Any) -> dict:
    base = {
        "id": eid, "type": {"id": 5, "name": "Travel - Airfare"},
        "member": {"id": 141, "identifier": "bchen", "name": "Brian Chen"}, "date": "2025-06-16T00:00:00Z",
        "amount": 780.0, "billableOption": "Billable", "notes": "Airfare for on-site cut-over",
        "invoiceAmount": 780.0, "billAmount": 780.0, "invoice": {"id": 501},
        "_info": {"lastUpdated": "2025-06-16T00:00:00Z"},
    }
    return {**base, **over}


def payloads(head: dict | None = None, products: list | None = None, times: list | None = None,
             expenses: list | None = None) -> InvoicePayloads:
    head = head or header()
    return InvoicePayloads(head["id"], head, {
        "procurement/products": products or [], "time/entries": times or [], "expense/entries": expenses or [],
        "setup": None, "company": None})


def only(rule: str, **settings: Any) -> dict:
    """Settings with every rule off but ``rule`` (on, with ``settings``)."""
    cfg: dict[str, dict] = {key: {"enabled": False} for key in RULES}
    cfg[rule] = {"enabled": True, **settings}
    return cfg


def run(rule: str, p: InvoicePayloads, history: History | None = None, **settings: Any) -> list:
    return [(f.severity, f.target_type, f.target_id, f.message) for f in evaluate(p, only(rule, **settings), history)]


# -- low profit margin -------------------------------------------------------------------------------------------


def test_low_margin_warns_with_the_margin_price_and_cost():
    assert run("low_margin", payloads(products=[product()])) == [(
        "warning", "product", 20001,
        "Margin 8 % on 'Firewall renewal' is below your 20 % threshold: price $110.00, cost $101.20")]


def test_low_margin_is_an_error_when_the_price_is_below_cost():
    found = run("low_margin", payloads(products=[product(price=989.0, cost=1012.0, extPrice=1978.0)]))
    assert found == [("error", "product", 20001,
                      "'Firewall renewal' is priced below cost: price $989.00, cost $1,012.00 (margin -2.3 %)")]


def test_low_margin_is_quiet_at_exactly_the_threshold_and_follows_a_lower_one():
    assert run("low_margin", payloads(products=[product(price=100.0, cost=80.0)])) == []
    assert run("low_margin", payloads(products=[product()]), threshold_percent="5") == []
    assert len(run("low_margin", payloads(products=[product(price=100.0, cost=80.01)]))) == 1


def test_low_margin_ignores_zero_price_lines_unless_told_not_to():
    line = product(price=0.0, extPrice=0.0, cost=45.0)
    assert run("low_margin", payloads(products=[line])) == []
    assert run("low_margin", payloads(products=[line]), ignore_zero_price=False)[0][0] == "error"


def test_low_margin_skips_credit_memos_non_billable_lines_and_unreadable_costs():
    memo = payloads(header(type="CreditMemo", total=-110.0), products=[product(quantity=-1.0)])
    assert run("low_margin", memo) == []
    assert run("low_margin", payloads(products=[product(billableOption="NoCharge")])) == []
    assert run("low_margin", payloads(products=[product(cost="n/a"), product(20002, price="free")])) == []
    assert run("low_margin", payloads(products=[product(cost=None)])) == []


def test_low_margin_is_on_by_default_and_can_be_turned_off():
    p = payloads(products=[product()])
    assert [f.rule for f in evaluate(p)] == ["low_margin"]
    assert evaluate(p, {"low_margin": {"enabled": False}}) == []


# -- agreement invoice amount changed ----------------------------------------------------------------------------


def agreement_invoice(total: float) -> InvoicePayloads:
    return payloads(header(id=502, invoiceNumber="INV-20502", type="Agreement", total=total,
                           agreement={"id": 31, "name": "AcmeDental Managed Services"}, applyToType="Agreement",
                           date="2025-06-01T00:00:00Z"))


def agreement_history(previous: str) -> History:
    return History(agreement_invoices={31: (
        AgreementInvoice(480, "INV-20480", __import__("datetime").date(2025, 4, 1), Decimal("1400.00")),
        AgreementInvoice(490, "INV-20490", __import__("datetime").date(2025, 5, 1), Decimal(previous)),
        AgreementInvoice(502, "INV-20502", __import__("datetime").date(2025, 6, 1), Decimal("1542.00")),
        AgreementInvoice(510, "INV-20510", __import__("datetime").date(2025, 7, 1), Decimal("9.00")),
    )})


def test_agreement_total_that_changed_since_the_previous_invoice_is_info_with_both_totals():
    found = run("agreement_amount_changed", agreement_invoice(1542.0), agreement_history("1509.00"))
    assert found == [("info", "invoice", 502,
                      "Total $1,542.00 on agreement 'AcmeDental Managed Services' is $33.00 more than the "
                      "previous invoice INV-20490 ($1,509.00, 1 May 2025)")]


def test_agreement_total_within_the_tolerance_or_without_history_is_quiet():
    p = agreement_invoice(1542.0)
    assert run("agreement_amount_changed", p, agreement_history("1542.00")) == []
    assert run("agreement_amount_changed", p) == []
    assert run("agreement_amount_changed", p, agreement_history("1537.01"), tolerance="5") == []
    assert len(run("agreement_amount_changed", p, agreement_history("1537.00"), tolerance="5")) == 1
    assert run("agreement_amount_changed", p, agreement_history("1509.00"), enabled=False) == []


def test_build_history_finds_the_previous_agreement_invoice_from_list_rows_and_payloads():
    rows = [{"id": 490, "invoiceNumber": "INV-20490", "type": "Agreement", "date": "2025-05-01T00:00:00Z",
             "total": 1509.0, "agreement": {"id": 31}}, {"id": 491, "type": "Standard", "total": 5.0}]
    history = build_history(rows, [agreement_invoice(1542.0)])
    assert "$33.00 more" in run("agreement_amount_changed", agreement_invoice(1542.0), history)[0][3]


# -- notes -------------------------------------------------------------------------------------------------------


def test_ticket_billed_with_empty_notes_is_a_warning_on_the_ticket():
    times = [time_entry(notes=""), time_entry(100002, notes="   "), time_entry(100003)]
    assert run("ticket_no_notes", payloads(times=times)) == [(
        "warning", "ticket", 4002,
        "Ticket #4002 'VPN drops every few minutes' bills 3.00 h in 2 time entries with no notes")]


def test_ticket_notes_rule_ignores_written_notes_and_unbilled_time():
    times = [time_entry(notes="x"), time_entry(100002, notes="", billableOption="NoCharge")]
    assert run("ticket_no_notes", payloads(times=times)) == []
    assert run("ticket_no_notes", payloads(times=[time_entry(notes="")]), enabled=False) == []


def test_thin_notes_below_the_minimum_are_a_warning_with_the_count():
    found = run("insufficient_notes", payloads(times=[time_entry(notes="Fixed it.")]))
    assert found == [("warning", "time_entry", 100001,
                      "Notes on 1.50 h by Brian Chen on 20 Jun 2025 are 9 characters, below your minimum of 20")]


def test_thin_notes_rule_is_quiet_at_the_minimum_and_follows_its_setting():
    assert run("insufficient_notes", payloads(times=[time_entry(notes="x" * 20)])) == []
    assert len(run("insufficient_notes", payloads(times=[time_entry(notes="x" * 19)]))) == 1
    assert run("insufficient_notes", payloads(times=[time_entry(notes="x" * 19)]), min_chars=10) == []
    assert run("insufficient_notes", payloads(times=[time_entry(notes="")])) == []  # the no-notes rule's case


# -- credit memo, non-billable, stale, work type -----------------------------------------------------------------


def test_credit_memo_with_a_positive_total_is_an_error():
    memo = header(type="CreditMemo", invoiceNumber="INV-10006", total=232.14)
    assert run("credit_memo_positive_total", payloads(memo)) == [(
        "error", "invoice", 501,
        "Credit memo INV-10006 has a positive total of $232.14: it would charge the client instead of crediting "
        "them")]
    assert run("credit_memo_positive_total", payloads(header(type="CreditMemo", total=0.0))) == []
    assert run("credit_memo_positive_total", payloads(header(total=232.14))) == []
    assert run("credit_memo_positive_total", payloads(memo), enabled=False) == []


def test_no_charge_and_do_not_bill_time_on_the_invoice_is_info():
    times = [time_entry(billableOption="NoCharge", invoiceHours=0.0, hoursBilled=0.0, actualHours=1.0),
             time_entry(100002, billableOption="DoNotBill", invoiceHours=0.0, actualHours=0.5), time_entry(100003)]
    assert run("non_billable_time", payloads(times=times)) == [
        ("info", "time_entry", 100001, "1.00 h by Brian Chen on 20 Jun 2025 is marked No Charge and appears on "
                                       "the invoice"),
        ("info", "time_entry", 100002, "0.50 h by Brian Chen on 20 Jun 2025 is marked Do Not Bill and appears on "
                                       "the invoice")]
    assert run("non_billable_time", payloads(times=times), enabled=False) == []


def test_time_worked_more_than_sixty_days_before_the_invoice_is_stale():
    stale = time_entry(timeStart="2025-04-27T09:00:00Z")  # 61 days before 27 Jun
    assert run("stale_time", payloads(times=[stale])) == [(
        "warning", "time_entry", 100001,
        "1.50 h by Brian Chen on 27 Apr 2025 was worked 61 days before the invoice date (27 Jun 2025), more than "
        "your 60 days")]


def test_stale_time_is_quiet_at_exactly_the_limit_and_follows_its_setting():
    assert run("stale_time", payloads(times=[time_entry(timeStart="2025-04-28T09:00:00Z")])) == []
    assert run("stale_time", payloads(times=[time_entry(timeStart="2025-04-27T09:00:00Z")]), days=90) == []
    assert run("stale_time", payloads(times=[time_entry(timeStart="last spring")])) == []


def test_watched_work_type_is_flagged_by_its_raw_name_whatever_the_case():
    entry = time_entry(workType={"id": 3, "name": "After Hours"})
    assert run("flagged_work_type", payloads(times=[entry]), work_types=["after hours"]) == [(
        "warning", "time_entry", 100001,
        "1.50 h by Brian Chen on 20 Jun 2025 is billed as work type 'After Hours', which is on your watch list")]
    assert run("flagged_work_type", payloads(times=[entry]), work_types=["After"]) == []
    assert run("flagged_work_type", payloads(times=[entry])) == []  # the list starts empty
    assert [f.rule for f in evaluate(payloads(times=[entry]))] == []  # and the rule ships off


# -- tax, large expense, keyword ---------------------------------------------------------------------------------


def test_invoice_without_a_tax_code_is_flagged_when_the_rule_is_on():
    untaxed = payloads(header(taxCode=None))
    assert run("no_tax_code", untaxed) == [("warning", "invoice", 501, "Invoice INV-20501 has no tax code")]
    assert run("no_tax_code", payloads()) == []
    assert evaluate(untaxed) == []


def test_product_not_taxable_checks_every_line_or_only_the_listed_product_classes():
    lines = [product(taxableFlag=False, productClass="Service"), product(20002, taxableFlag=False,
                                                                         productClass="Inventory"), product(20003)]
    assert [f[2] for f in run("product_not_taxable", payloads(products=lines))] == [20001, 20002]
    found = run("product_not_taxable", payloads(products=lines), product_types=["inventory"])
    assert found == [("warning", "product", 20002, "'Firewall renewal' (Inventory) is not marked taxable")]
    assert "product_not_taxable" not in {f.rule for f in evaluate(payloads(products=lines[:1]))}


def test_expense_at_the_threshold_is_large_and_one_cent_below_is_not():
    at = payloads(expenses=[expense(invoiceAmount=500.0)])
    assert run("large_expense", at) == [(
        "warning", "expense", 3001,
        "'Travel - Airfare' expense of $500.00 by Brian Chen on 16 Jun 2025 is at or above your $500.00 threshold")]
    assert run("large_expense", payloads(expenses=[expense(invoiceAmount=499.99)])) == []
    assert run("large_expense", at, threshold="1000") == []


def test_large_expense_is_formatted_in_the_invoice_currency():
    found = run("large_expense", payloads(header(currency=EUR), expenses=[expense()]))
    assert "780,00\u00a0\u20ac" in found[0][3] and "500,00\u00a0\u20ac threshold" in found[0][3]


def test_watched_keyword_in_customer_visible_text_is_an_error_on_that_record():
    p = payloads(header(bottomComment="Internal: do not send"),
                 times=[time_entry(notes="Rebuilt the VPN. TODO: confirm rate with Dave")],
                 products=[product(description="Accurate rate card", customerDescription="Accurate rate card")])
    found = run("keyword", p, keywords=["todo", "internal", "rate"])
    assert found == [
        ("error", "invoice", 501, "Watched keyword 'internal' appears in the invoice's bottom comment"),
        ("error", "product", 20001, "Watched keyword 'rate' appears in the description of product line 20001"),
        ("error", "time_entry", 100001, "Watched keywords 'todo', 'rate' appear in the notes of 1.50 h by Brian Chen "
                                        "on 20 Jun 2025")]
    assert run("keyword", p, keywords=["accura", "dav"]) == []  # whole words only
    assert run("keyword", p) == [] and "keyword" not in {f.rule for f in evaluate(p)}


# -- duplicates, outliers, zero amounts, rates -------------------------------------------------------------------


def test_identical_product_line_twice_is_flagged_on_the_second_line():
    lines = [product(20001, sequenceNumber=1.0), product(20002, sequenceNumber=2.0),
             product(20003, quantity=2.0, sequenceNumber=3.0)]
    assert run("duplicate_billing", payloads(products=lines)) == [(
        "warning", "product", 20002,
        "'Firewall renewal' (1 \u00d7 $110.00) is on this invoice 2 times: same item, description, quantity and "
        "price")]
    assert run("duplicate_billing", payloads(products=[lines[0], lines[2]])) == []


def test_one_time_entry_twice_or_on_another_open_invoice_is_a_duplicate():
    assert run("duplicate_billing", payloads(times=[time_entry(), time_entry()])) == [(
        "warning", "time_entry", 100001, "Time entry 1.50 h by Brian Chen on 20 Jun 2025 appears 2 times on this "
                                         "invoice")]
    history = History(open_time_entries={100001: {501: "INV-20501", 777: "INV-20777"}})
    found = run("duplicate_billing", payloads(times=[time_entry()]), history)
    assert found[0][3].endswith("is also on open invoice INV-20777")
    assert run("duplicate_billing", payloads(times=[time_entry()]),
               History(open_time_entries={100001: {501: "INV-20501"}})) == []


def test_time_entry_with_more_hours_than_the_threshold_is_an_outlier():
    big = time_entry(actualHours=14.0, invoiceHours=14.0, hoursBilled=14.0)
    assert run("hours_outlier", payloads(times=[big])) == [(
        "warning", "time_entry", 100001,
        "One time entry of 14.00 h by Brian Chen on 20 Jun 2025 is above your 12 h threshold")]
    assert run("hours_outlier", payloads(times=[time_entry(actualHours=12.0, invoiceHours=12.0)])) == []
    assert run("hours_outlier", payloads(times=[big]), max_hours="16") == []
    assert run("hours_outlier", payloads(times=[big]), enabled=False) == []


def test_billable_line_with_a_zero_amount_is_info_unless_an_agreement_covers_it():
    p = payloads(products=[product(price=0.0, extPrice=0.0), product(20002, extPrice=0.0, billableOption="NoCharge")],
                 times=[time_entry(extendedInvoiceAmount=0.0),
                        time_entry(100002, extendedInvoiceAmount=0.0, agreementHours=1.5)],
                 expenses=[expense(invoiceAmount=0.0)])
    assert run("zero_amount_line", p) == [
        ("info", "product", 20001, "Billable line 'Firewall renewal' has an amount of $0.00"),
        ("info", "time_entry", 100001, "Billable time 1.50 h by Brian Chen on 20 Jun 2025 has an amount of $0.00"),
        ("info", "expense", 3001, "Billable 'Travel - Airfare' expense has an amount of $0.00")]
    assert run("zero_amount_line", payloads(products=[product()])) == []
    assert run("zero_amount_line", p, enabled=False) == []


def test_rate_far_from_the_roles_usual_rate_is_info_with_both_rates():
    usual = History(usual_rates={("USD", "Systems Engineer"): Decimal("135.00")})
    high = payloads(times=[time_entry(hourlyRate=202.5)])
    assert run("rate_differs", high, usual) == [(
        "info", "time_entry", 100001,
        "Rate $202.50/h for 'Systems Engineer' on 1.50 h by Brian Chen on 20 Jun 2025 is 50 % above the usual "
        "$135.00/h (your threshold is 25 %)")]
    assert run("rate_differs", payloads(times=[time_entry(hourlyRate=168.75)]), usual) == []  # exactly 25 %
    assert "below" in run("rate_differs", payloads(times=[time_entry(hourlyRate=100.0)]), usual)[0][3]
    assert run("rate_differs", high, usual, threshold_percent="60") == []
    assert run("rate_differs", high) == []  # no history, no opinion
    assert evaluate(high, None, usual) == []  # ships off


def test_build_history_takes_the_median_rate_per_currency_and_role_from_enough_entries():
    invoices = [payloads(header(id=600 + i), times=[time_entry(100100 + i, hourlyRate=rate)])
                for i, rate in enumerate((135.0, 135.0, 140.0, 135.0, 500.0))]
    history = build_history((), invoices)
    assert history.usual_rates == {("USD", "Systems Engineer"): Decimal("135.0")}
    assert build_history((), invoices[:4]).usual_rates == {}  # four rates are not enough to call one usual
    assert history.open_time_entries[100100] == {600: "INV-20501"}


# -- settings and the contract -----------------------------------------------------------------------------------


def test_defaults_match_the_published_rule_table():
    on = {k for k, v in default_settings().items() if v["enabled"]}
    assert on == {"low_margin", "agreement_amount_changed", "ticket_no_notes", "insufficient_notes",
                  "credit_memo_positive_total", "non_billable_time", "stale_time", "duplicate_billing",
                  "hours_outlier", "zero_amount_line"}
    assert len(RULES) == 16
    defaults = default_settings()
    assert (defaults["low_margin"]["threshold_percent"], defaults["agreement_amount_changed"]["tolerance"],
            defaults["insufficient_notes"]["min_chars"], defaults["stale_time"]["days"],
            defaults["large_expense"]["threshold"], defaults["hours_outlier"]["max_hours"],
            defaults["rate_differs"]["threshold_percent"]) == ("20", "0.01", 20, 60, "500", "12", "25")
    assert all(defaults[k][list_key] == [] for k, list_key in (
        ("flagged_work_type", "work_types"), ("product_not_taxable", "product_types"), ("keyword", "keywords")))
    assert json.loads(json.dumps(defaults)) == defaults
    severities = {k: s.severity for k, s in RULES.items()}
    assert severities["credit_memo_positive_total"] == severities["keyword"] == "error"
    assert {severities[k] for k in ("agreement_amount_changed", "non_billable_time", "zero_amount_line",
                                    "rate_differs")} == {"info"}


def test_validate_settings_fills_defaults_and_normalises_form_values():
    out = validate_settings({"low_margin": {"threshold_percent": " 12.50 ", "ignore_zero_price": "off"},
                             "keyword": {"enabled": "on", "keywords": "TODO\n\n internal  note \ntodo"},
                             "stale_time": {"days": "90"}})
    assert out["low_margin"] == {"enabled": True, "threshold_percent": "12.5", "ignore_zero_price": False}
    assert out["keyword"] == {"enabled": True, "keywords": ["TODO", "internal note"]}
    assert out["stale_time"]["days"] == 90 and out["hours_outlier"] == default_settings()["hours_outlier"]
    assert validate_settings(None) == default_settings()


@pytest.mark.parametrize(("raw", "field"), [
    ({"low_marg": {}}, "low_marg"),
    ({"low_margin": {"threshold": 5}}, "low_margin.threshold"),
    ({"low_margin": {"threshold_percent": "abc"}}, "low_margin.threshold_percent"),
    ({"low_margin": {"threshold_percent": 150}}, "low_margin.threshold_percent"),
    ({"low_margin": {"threshold_percent": "NaN"}}, "low_margin.threshold_percent"),
    ({"stale_time": {"days": 1.5}}, "stale_time.days"),
    ({"stale_time": {"days": True}}, "stale_time.days"),
    ({"large_expense": {"threshold": "-1"}}, "large_expense.threshold"),
    ({"keyword": {"keywords": [1, 2]}}, "keyword.keywords"),
    ({"keyword": {"keywords": ["x" * 101]}}, "keyword.keywords"),
    ({"keyword": {"enabled": "maybe"}}, "keyword.enabled"),
    ({"keyword": "on"}, "keyword"),
])
def test_bad_settings_raise_an_error_naming_the_field(raw, field):
    with pytest.raises(SettingsError) as caught:
        validate_settings(raw)
    assert caught.value.field == field and caught.value.message
    with pytest.raises(SettingsError):
        evaluate(payloads(), raw)


def test_every_rule_has_settings_fields_named_in_the_catalog():
    for key, spec in RULES.items():
        assert set(default_settings()[key]) == {"enabled"} | {s.key for s in spec.settings}
        assert spec.severity in ("error", "warning", "info") and spec.name and spec.trigger


def test_findings_have_unique_identities_and_known_targets_and_survive_a_snapshot_round_trip():
    p = payloads(header(type="CreditMemo", total=10.0, taxCode=None),
                 products=[product(), product(20002), product(20003, price=0.0, extPrice=0.0)],
                 times=[time_entry(notes="", actualHours=30.0, invoiceHours=30.0, timeStart="2025-01-01T00:00:00Z"),
                        time_entry(100002, notes="short", billableOption="NoCharge")],
                 expenses=[expense()])
    everything = {k: {"enabled": True} for k in RULES}
    everything["keyword"]["keywords"] = ["cut-over"]
    findings = evaluate(p, everything, History())
    assert len({f.key for f in findings}) == len(findings) >= 10
    assert all(f.target_type in TARGET_TYPES for f in findings)
    assert evaluate(InvoicePayloads.from_json(p.to_json()), everything, History()) == findings


def test_unreadable_records_give_no_finding_instead_of_a_crash():
    p = payloads(products=["not a record", {"price": 1.0}, product(quantity="two", price=10.0)],
                 times=[None, time_entry(hourlyRate="fast", notes=5, timeStart=17)], expenses=[{"id": "x"}])
    everything = {k: {"enabled": True} for k in RULES}
    assert [f.rule for f in evaluate(p, everything, History())] == []
    assert evaluate(InvoicePayloads(501, {"invoiceNumber": "INV-20501", "total": 5.0}, {}), everything) == []
    assert evaluate(InvoicePayloads(501, {"id": 501, "type": "CreditMemo", "total": "lots", "taxCode": "none"},
                                    {}), only("credit_memo_positive_total")) == []
