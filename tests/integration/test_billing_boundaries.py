"""What billing must never become: a way around CSRF (only the signed webhooks are exempt) or a handler of card
data (no form field, template input or request key named like one; the schema side is in test_tenancy_catalog)."""

from __future__ import annotations

import ast
import pathlib
import re
import uuid

from tests.conftest import sign_in

APP = pathlib.Path(__file__).resolve().parents[2] / "app"
SIGNED_WEBHOOKS = {"sending_hooks.mailgun", "review_hooks.receive_callback", "billing_hooks.stripe"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Words of a field name ("card_number" -> card, number) that would mean card or bank data passed through us
# ("cc" alone is an email copy, so card autocomplete tokens are checked as "cc-..." instead).
CARD_WORDS = {"card", "cardnumber", "ccnumber", "cvc", "cvc2", "cvv", "pan", "iban", "exp", "expmonth",
              "expyear", "exp_month", "exp_year", "security_code", "routing", "last4"}


def _card_like(name: str) -> bool:
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    joined = "_".join(words)
    return bool(set(words) & CARD_WORDS) or any(w in joined for w in ("exp_month", "exp_year", "security_code"))


def test_the_card_word_check_catches_card_fields_and_passes_ours():
    assert all(_card_like(n) for n in ("card_number", "card[number]", "cvc", "exp-month", "iban", "ccnumber"))
    assert not any(_card_like(n) for n in ("number", "invoice_id", "expires_days", "company_id", "interval", "cc"))


def test_only_the_signed_webhooks_are_exempt_from_csrf(app):
    assert app.extensions["csrf_exempt"] == SIGNED_WEBHOOKS


def test_every_other_unsafe_route_refuses_a_signed_in_owner_without_the_csrf_token(app, make_tenant):
    from flask import url_for

    owner = make_tenant("Csrf Co")
    client = app.test_client()
    sign_in(client, owner)
    checked = []
    for rule in app.url_map.iter_rules():
        methods = (rule.methods or set()) & UNSAFE
        if not methods or rule.endpoint in SIGNED_WEBHOOKS or rule.endpoint.startswith("dev."):
            continue
        values = {}
        for arg in rule.arguments:
            converter = rule._converters[arg].__class__.__name__  # noqa: SLF001
            values[arg] = 1 if converter == "IntegerConverter" else (
                uuid.uuid4() if converter == "UUIDConverter" else "x")
        with app.test_request_context():
            url = url_for(rule.endpoint, **values)
        for method in sorted(methods):
            response = client.open(url, method=method, data={"email": "x@y.example"})
            assert response.status_code == 400, (rule.endpoint, method, response.status_code)
            checked.append(rule.endpoint)
    assert "billing.page" not in checked  # a GET page; the list is of unsafe routes only
    assert len(checked) > 20


def _request_keys(tree: ast.AST) -> set[str]:
    """String keys read from anything in a module that uses Flask's request: ``x.get("k")``, ``x.getlist("k")``,
    ``x["k"]``, ``"k" in x``."""
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "get", "getlist", "pop") and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            keys.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str):
            keys.add(node.slice.value)
    return keys


def test_no_request_handler_reads_a_field_named_like_card_data():
    found = []
    for path in APP.rglob("*.py"):
        source = path.read_text()
        if "request" not in source:
            continue
        found += [f"{path.relative_to(APP.parent)}: {k}" for k in _request_keys(ast.parse(source)) if _card_like(k)]
    assert found == []


def test_no_template_has_an_input_named_like_card_data():
    found = []
    for path in (APP / "templates").rglob("*.html"):
        for name in re.findall(r"""\b(?:name|autocomplete)\s*=\s*["']([^"'{}]+)["']""", path.read_text()):
            if _card_like(name) or name.startswith("cc-"):
                found.append(f"{path.relative_to(APP.parent)}: {name}")
    assert found == []
