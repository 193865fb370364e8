"""Money and number formatting follows ConnectWise's currency settings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.invoices.document import USD, Currency, format_hours, format_money, format_number
from app.invoices.errors import InvalidInvoiceData
from app.invoices.payloads import parse_currency

EUR = Currency("EUR", "€", 2, ",", ".", False)
JPY = Currency("JPY", "¥", 0, ".", ",", True)
INR = Currency("INR", "₹", 2, ".", ",", True)


@pytest.mark.parametrize(("amount", "currency", "text"), [
    ("1234.5", USD, "$1,234.50"),
    ("0", USD, "$0.00"),
    ("-12", USD, "-$12.00"),
    ("1234567.891", EUR, "1.234.567,89\u00a0€"),
    ("-0.5", EUR, "-0,50\u00a0€"),
    ("150480", JPY, "¥150,480"),
    ("1234.5", JPY, "¥1,235"),  # JPY has no minor unit: rounded half up
    ("99.995", USD, "$100.00"),
    ("100000", INR, "₹100,000.00"),
])
def test_money_is_formatted_with_the_currency_symbol_decimals_and_separators(amount, currency, text):
    assert format_money(Decimal(amount), currency) == text


def test_negative_parentheses_and_the_currency_code_follow_connectwise_flags():
    accounting = Currency("USD", "$", 2, ".", ",", True, negative_parentheses=True, show_code=True)
    assert format_money(Decimal("-12"), accounting) == "($12.00\u00a0USD)"
    no_symbol = Currency("USD", "$", 2, ".", ",", True, show_symbol=False)
    assert format_money(Decimal("5"), no_symbol) == "5.00"


def test_hours_use_two_decimals_and_the_currency_decimal_separator():
    assert format_hours(Decimal("1.5"), EUR) == "1,50"
    assert format_hours(Decimal("0.25"), JPY) == "0.25"  # hours keep decimals even where money has none
    assert format_number(Decimal("1234.5"), EUR, 1) == "1.234,5"


def test_connectwise_currency_reference_is_read_with_its_flags():
    currency = parse_currency({"id": 2, "symbol": "€", "currencyCode": "EUR", "decimalSeparator": ",",
                               "numberOfDecimals": 2, "thousandsSeparator": ".", "negativeParenthesesFlag": False,
                               "displaySymbolFlag": True, "currencyIdentifier": "EUR", "displayIdFlag": False,
                               "rightAlign": True, "name": "Euro"}, USD)
    assert currency == EUR
    assert parse_currency(None, USD) == USD
    assert parse_currency({"currencyCode": "JPY", "numberOfDecimals": 0, "symbol": "¥"}, USD).decimals == 0


@pytest.mark.parametrize("bad", [{"numberOfDecimals": 9}, {"numberOfDecimals": "2"}, {"decimalSeparator": "5"},
                                 {"thousandsSeparator": ", "}, {"rightAlign": "yes"}, "EUR"])
def test_a_malformed_currency_is_a_typed_error(bad):
    with pytest.raises(InvalidInvoiceData, match="currency"):
        parse_currency(bad, USD)
