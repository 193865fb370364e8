"""The conditions grammar: tokenizer, parser, precedence, operators and errors (no HTTP)."""

from __future__ import annotations

import pytest

from cwsim.conditions import And, Compare, ConditionError, Or, compile_conditions, parse

RECORD = {
    "id": 7,
    "name": "Acme Dental Group",
    "total": 1250.5,
    "closedFlag": False,
    "notes": "",
    "company": {"id": 5, "identifier": "Acme"},
    "date": "2025-03-01T00:00:00Z",
    "types": [{"name": "Client"}, {"name": "Partner"}],
    "_info": {"lastUpdated": "2025-06-01T10:00:00Z"},
}


def matches(text: str, record: dict = RECORD) -> bool:
    return compile_conditions(text)[1](record)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("id = 7", True),
        ("id != 7", False),
        ("total > 1000", True),
        ("total >= 1250.5", True),
        ("total < 1250.5", False),
        ("total <= 1250.5", True),
        ("id=7", True),
        ("id>=8", False),
    ],
)
def test_comparison_operators_compare_numbers(text, expected):
    assert matches(text) is expected


def test_strings_accept_double_and_single_quotes_case_insensitively():
    assert matches('name = "Acme Dental Group"')
    assert matches("name = 'acme dental group'")
    assert not matches('name != "ACME DENTAL GROUP"')


def test_contains_and_not_contains():
    assert matches('name contains "Dental"')
    assert not matches('name not contains "dental"')
    assert matches('name NOT CONTAINS "Vet"')


def test_like_accepts_star_and_percent_wildcards():
    assert matches('name like "Acme*"')
    assert matches('name like "%Group"')
    assert matches("name like '*Dent%'")
    assert not matches('name like "Dental*"')
    assert matches('name not like "Dental*"')


def test_like_bracket_escape_matches_a_literal_bracket():
    assert matches('name like "[[]x*"', {"name": "[x] thing"})


def test_in_and_not_in_lists():
    assert matches("id in (1, 7, 9)")
    assert not matches("id not in (1,7)")
    assert matches("company/identifier in ('Acme', 'Other')")


def test_nested_paths_reach_reference_fields():
    assert matches("company/id=5")
    assert not matches("company/id = 6")


def test_paths_through_lists_match_any_element():
    assert matches('types/name = "Partner"')
    assert not matches('types/name = "Vendor"')


def test_bare_booleans_in_any_case():
    for literal in ("false", "False", "FALSE"):
        assert matches(f"closedFlag = {literal}")
    assert not matches("closedFlag = True")


def test_bracketed_datetimes_compare_as_times():
    assert matches("date > [2025-01-01T00:00:00Z]")
    assert not matches("date > [2025-03-01T00:00:00Z]")
    assert matches("date >= [2025-03-01T00:00:00Z]")


def test_last_updated_works_bare_and_under_info():
    known = {"id", "name", "_info"}
    _node, pred = compile_conditions("lastUpdated > [2025-05-01T00:00:00Z]", lambda p: p[0] in known)
    assert pred(RECORD)
    assert matches("_info/lastUpdated < [2025-05-01T00:00:00Z]") is False


def test_null_matches_missing_and_empty_values():
    assert matches("notes = null")
    assert matches("missing = null")
    assert matches("name != null")
    assert not matches("name = null")


def test_and_binds_tighter_than_or():
    node = parse("id = 1 or id = 7 and total > 5000")
    assert isinstance(node, Or) and isinstance(node.parts[1], And)
    assert not matches("id = 1 or id = 7 and total > 5000")
    assert matches("(id = 1 or id = 7) and total > 1000")


def test_and_or_keywords_are_case_insensitive():
    assert matches("id = 7 AND company/id = 5 Or id = 0")


def test_parentheses_group_like_cw_own_links():
    text = "(chargeToType='ServiceTicket' OR chargeToType='ProjectTicket') AND chargeToId=100"
    assert matches(text, {"chargeToType": "ProjectTicket", "chargeToId": 100})
    assert not matches(text, {"chargeToType": "Company", "chargeToId": 100})


def test_negative_numbers_parse_as_literals():
    assert parse("total > -5") == Compare(("total",), ">", -5)


@pytest.mark.parametrize(
    "text",
    [
        "id =",
        "id = (1",
        "(id = 1",
        "id == 1",
        "id 1",
        'name = "open',
        "date > [2025-13-45]",
        "id in 1",
        "and id = 1",
        "id = 1 or",
        "",
        "name contains 5",
        "id = 1 )",
        "id ~ 1",
    ],
)
def test_malformed_conditions_raise(text):
    with pytest.raises(ConditionError):
        parse(text)


def test_unknown_field_is_rejected_with_cw_message():
    with pytest.raises(ConditionError, match="typeids is not a recognized name."):
        compile_conditions('typeids="1"', lambda p: p[0] in {"id"})
