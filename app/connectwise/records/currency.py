"""ConnectWise's CurrencyReference: the ``Currency`` value money is formatted with, and its strict reading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.connectwise.records.reader import Reader


@dataclass(frozen=True)
class Currency:
    """ConnectWise's CurrencyReference, reduced to what formatting needs."""

    code: str
    symbol: str
    decimals: int
    decimal_sep: str
    group_sep: str
    symbol_first: bool  # CW rightAlign=false: "$1,234.56"; rightAlign=true: "1.234,56 €"
    negative_parentheses: bool = False  # CW negativeParenthesesFlag: "($12.00)" instead of "-$12.00"
    show_symbol: bool = True  # CW displaySymbolFlag
    show_code: bool = False  # CW displayIdFlag: append "EUR"


USD = Currency("USD", "$", 2, ".", ",", True)


def parse_currency(data: Any, default: Currency) -> Currency:
    """ConnectWise's CurrencyReference; the default (the billing setup's or USD) when it is omitted.

    Always strict: a currency that half reads would print wrong amounts. Raises ``InvalidRecord``.
    """
    if data is None:
        return default
    r = Reader(data, "currency")
    decimals = r.int_("numberOfDecimals")
    if decimals is not None and not 0 <= decimals <= 6:
        raise r.bad("numberOfDecimals", "between 0 and 6")
    code = r.str_("currencyCode") or r.str_("currencyIdentifier") or default.code
    return Currency(
        code=code[:8], symbol=r.str_("symbol")[:8] if "symbol" in r.data else default.symbol,
        decimals=default.decimals if decimals is None else decimals,
        decimal_sep=_sep(r, "decimalSeparator", default.decimal_sep),
        group_sep=_sep(r, "thousandsSeparator", default.group_sep, allow_empty=True),
        symbol_first=not r.bool_("rightAlign", not default.symbol_first),
        negative_parentheses=r.bool_("negativeParenthesesFlag", default.negative_parentheses),
        show_symbol=r.bool_("displaySymbolFlag", default.show_symbol),
        show_code=r.bool_("displayIdFlag", default.show_code),
    )


def _sep(r: Reader, path: str, default: str, allow_empty: bool = False) -> str:
    if path not in r.data:
        return default
    value = r.data[path]
    if not isinstance(value, str) or len(value) > 1 or (not value and not allow_empty) or value.isdigit():
        raise r.bad(path, "a single separator character")
    return value
