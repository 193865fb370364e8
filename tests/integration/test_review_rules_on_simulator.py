"""The review rules over every invoice of the ConnectWise simulator, read through the real pipeline
(``fetch_payloads``): each rule fires on its seeded case with the right severity, the default-on rules fire with
the shipped settings, and nothing crashes or repeats an identity."""

from __future__ import annotations

from collections import defaultdict

import pytest

from app.connectwise.client import Client, Credentials
from app.invoices.service import InvoicePayloads, fetch_payloads
from app.review.rules import RULES, build_history, default_settings, evaluate

CLIENT_ID = "6f1b5c9e-0000-4000-8000-000000000001"

# rule -> (the simulator's case, the severity it must raise there)
DEFAULT_ON_CASES = {
    "low_margin": [("below_cost_product", "error"), ("low_margin_product", "warning")],
    "agreement_amount_changed": [("agreement_amount_changed", "info")],
    "ticket_no_notes": [("time_empty_notes", "warning")],
    "insufficient_notes": [("time_thin_notes", "warning")],
    "credit_memo_positive_total": [("credit_memo_positive_total", "error")],
    "non_billable_time": [("non_billable_time", "info")],
    "stale_time": [("stale_time", "warning")],
    "duplicate_billing": [("duplicate_product_line", "warning")],
    "hours_outlier": [("hours_outlier", "warning")],
    "zero_amount_line": [("zero_amount_billable_product", "info")],
}
# rules that ship off: the settings that turn each on, and the case (None: any invoice) it must fire on
DEFAULT_OFF_CASES = {
    "flagged_work_type": ({"work_types": ["After Hours"]}, None),
    "no_tax_code": ({}, "no_tax_code"),
    "product_not_taxable": ({}, None),
    "large_expense": ({}, "large_expense"),
    "keyword": ({"keywords": ["TODO"]}, "keyword_on_invoice"),
    "rate_differs": ({}, "rate_differs_from_usual"),
}


@pytest.fixture(scope="module")
def every_invoice(sim) -> dict[int, InvoicePayloads]:  # type: ignore[no-untyped-def]
    sim.reset()
    credentials = Credentials(sim.url, sim.company_id, sim.public_key, sim.private_key)
    with Client(credentials, CLIENT_ID, allow_loopback_http=True, sleep=lambda s: None) as cw:
        return {i: fetch_payloads(cw, i) for i in sim.state.data["invoices"].ids()}


@pytest.fixture(scope="module")
def history(every_invoice):  # type: ignore[no-untyped-def]
    return build_history((), every_invoice.values())


def _findings(every_invoice, settings, history):  # type: ignore[no-untyped-def]
    by_invoice = {i: evaluate(p, settings, history) for i, p in every_invoice.items()}
    by_rule: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for invoice_id, findings in by_invoice.items():
        assert len({f.key for f in findings}) == len(findings), invoice_id
        for f in findings:
            by_rule[f.rule][invoice_id].add(f.severity)
    return by_invoice, by_rule


def test_every_default_on_rule_fires_on_its_seeded_case_with_the_shipped_settings(every_invoice, history, sim):
    assert len(every_invoice) == 500
    cases = sim.state.data.cases
    _by_invoice, by_rule = _findings(every_invoice, None, history)
    assert set(DEFAULT_ON_CASES) == {k for k, spec in RULES.items() if spec.enabled}
    for rule, expected in DEFAULT_ON_CASES.items():
        for case, severity in expected:
            invoice_id = cases[case][-1]
            assert severity in by_rule[rule].get(invoice_id, set()), (rule, case, invoice_id)
    assert set(by_rule) <= set(DEFAULT_ON_CASES)  # nothing that ships off ran


def test_every_rule_that_ships_off_fires_on_its_case_once_turned_on(every_invoice, history, sim):
    cases = sim.state.data.cases
    settings = default_settings()
    for rule, (extra, _case) in DEFAULT_OFF_CASES.items():
        settings[rule].update(enabled=True, **extra)
    _by_invoice, by_rule = _findings(every_invoice, settings, history)
    for rule, (_extra, case) in DEFAULT_OFF_CASES.items():
        assert by_rule[rule], rule
        if case is not None:
            assert RULES[rule].severity in by_rule[rule][cases[case][0]], (rule, case)
    assert set(DEFAULT_OFF_CASES) | set(DEFAULT_ON_CASES) == set(RULES)


def test_the_seeded_cases_carry_the_numbers_that_tripped_them(every_invoice, history, sim):
    cases = sim.state.data.cases
    below = evaluate(every_invoice[cases["below_cost_product"][0]], None, history)
    assert any(f.severity == "error" and "price $989.00, cost $1,012.00" in f.message for f in below)
    stale = evaluate(every_invoice[cases["stale_time"][0]], None, history)
    assert any(f.rule == "stale_time" and "95 days" in f.message for f in stale)
    changed = evaluate(every_invoice[cases["agreement_amount_changed"][1]], None, history)
    assert any(f.rule == "agreement_amount_changed" and "INV-10001" in f.message for f in changed)
    quiet = evaluate(every_invoice[cases["agreement_amount_changed"][1]], None, None)
    assert not any(f.rule == "agreement_amount_changed" for f in quiet)  # without history the rule is quiet


def test_every_finding_is_stable_when_evaluated_from_a_stored_snapshot(every_invoice, history):
    for invoice_id in list(every_invoice)[:40]:
        payloads = every_invoice[invoice_id]
        stored = InvoicePayloads.from_json(payloads.to_json())
        assert evaluate(stored, None, history) == evaluate(payloads, None, history)
