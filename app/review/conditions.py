"""Id sets written as ConnectWise conditions that fit in a URL: ranges for runs, exclusions for the small gaps in
them, one ``in (...)`` list for the strays.

ConnectWise keeps URLs under about 2,000 characters (API-NOTES §4); URL-encoded, an ``in (...)`` list of 200 ids
nearly fills one (every comma travels as ``%2C``). Open invoices' ids cluster: a month's invoices are numbered in a
row, with the few already sent or closed between them. So a run of ids is written as a range, the ids of a gap of
at most ``MERGE_GAP`` inside it as ``not in (...)`` (cheaper than starting another range), and ids far from any run
go in the list::

    ((invoice/id >= 812 and invoice/id <= 1390 and invoice/id not in (820,977)) or invoice/id in (17,402))

``id_conditions`` matches exactly the ids it was given, never a neighbour. When the gaps are many (an exclusion
costs about 7 URL characters), an exact set needs several conditions, and each costs at least one request per
collection. ``covering_conditions`` weighs that against reading a few lines too many: it also tries plain ranges
over the gaps (the lines of the invoices in them are read and dropped by the caller), and keeps whichever cover
takes the fewest requests for the rows the collection is expected to have per id, with at most
``MAX_WASTE_SHARE`` ids matched beyond the set for each one in it. A sparse collection (a few expense lines on a
thousand invoices) then takes one request where an exact cover would take five; a dense one stays exact.

Each condition is measured as it travels (URL-encoded) against the room the rest of its request leaves
(``room``); a set that does not fit one condition is split into as few as fit, in id order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote_plus, urlencode

MAX_URL = 2000  # ConnectWise's own limit, approximately
URL_MARGIN = 40  # a later page's longer ``page=`` and ConnectWise's own rewriting of the query in its next link
MERGE_GAP = 6  # excluding up to this many ids costs fewer characters than a new range term
MAX_WASTE_SHARE = 1.0  # ids a cover may match beyond the set, per id in it
PAGE = 1000  # records per page
_PLAIN_GAPS = (0, 2, 6, 20, 60, 200, 1000, math.inf)  # gaps a plain-range cover may span, tried in turn


def encoded_len(text: str) -> int:
    """Characters ``text`` takes in a query string (``urlencode`` quotes values with ``quote_plus``)."""
    return len(quote_plus(text))


def room(api_base: str, path: str, params: dict[str, str | int], extra: str = "") -> int:
    """Characters left for an id condition in a request to ``path`` with ``params`` (conditions aside), when the
    condition also carries ``extra`` (e.g. ``"lastUpdated > [...] and "``)."""
    used = len(f"{api_base.rstrip('/')}/{path.lstrip('/')}?{urlencode(params)}&conditions=") + encoded_len(extra)
    return MAX_URL - URL_MARGIN - used


@dataclass
class _Condition:
    """The terms of one condition being filled, with its encoded length kept as terms are added."""

    field_name: str
    ranges: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)
    singles: list[int] = field(default_factory=list)
    range_chars: int = 0  # encoded length of the range terms alone
    single_chars: int = 0  # encoded length of the singles' digits and commas

    def length(self, extra_range: int = 0, extra_singles: tuple[int, ...] = ()) -> int:
        """The encoded length with a range term of ``extra_range`` characters and ``extra_singles`` added."""
        terms = len(self.ranges) + (1 if extra_range else 0)
        singles = len(self.singles) + len(extra_singles)
        chars = self.range_chars + extra_range
        if singles:
            terms += 1
            list_chars = self.single_chars + sum(_id_chars(i) for i in extra_singles)
            if not self.singles and extra_singles:
                list_chars -= 3  # the first id has no comma before it
            chars += encoded_len(f"{self.field_name} in ()") + list_chars
        if terms > 1:
            chars += (terms - 1) * encoded_len(" or ") + encoded_len("()")
        return chars

    def add_range(self, lo: int, hi: int, excluded: tuple[int, ...], chars: int) -> None:
        self.ranges.append((lo, hi, excluded))
        self.range_chars += chars

    def add_single(self, value: int) -> None:
        self.single_chars += _id_chars(value) - (3 if not self.singles else 0)
        self.singles.append(value)

    def empty(self) -> bool:
        return not self.ranges and not self.singles

    def render(self) -> str:
        terms = [_range_term(self.field_name, lo, hi, excluded) for lo, hi, excluded in self.ranges]
        if self.singles:
            terms.append(f"{self.field_name} in ({','.join(str(i) for i in self.singles)})")
        return terms[0] if len(terms) == 1 else f"({' or '.join(terms)})"


def _id_chars(value: int) -> int:
    return len(str(value)) + 3  # the id and the %2C before it


def _range_term(name: str, lo: int, hi: int, excluded: tuple[int, ...]) -> str:
    gaps = f" and {name} not in ({','.join(str(i) for i in excluded)})" if excluded else ""
    return f"({name} >= {lo} and {name} <= {hi}{gaps})"


def _blocks(ordered: list[int]) -> list[list[int]]:
    """Ids in runs whose gaps are at most MERGE_GAP ids wide."""
    blocks: list[list[int]] = []
    for value in ordered:
        if blocks and value - blocks[-1][-1] - 1 <= MERGE_GAP:
            blocks[-1].append(value)
        else:
            blocks.append([value])
    return blocks


def id_conditions(field_name: str, ids: Iterable[int], room: int) -> list[str]:
    """Conditions on ``field_name`` that together match exactly ``ids`` (none twice), each at most ``room``
    characters URL-encoded. Raises ValueError when ``room`` cannot hold even one id."""
    ordered = sorted({int(i) for i in ids})
    out: list[str] = []
    if not ordered:
        return out
    if encoded_len(f"{field_name} in ({ordered[-1]})") > room:
        raise ValueError("no room for an id condition in this request")
    current = _Condition(field_name)

    def flush() -> None:
        nonlocal current
        if not current.empty():
            out.append(current.render())
        current = _Condition(field_name)

    def place(members: list[int]) -> None:
        lo, hi = members[0], members[-1]
        excluded = tuple(sorted(set(range(lo, hi + 1)) - set(members)))
        range_chars = encoded_len(_range_term(field_name, lo, hi, excluded))
        single_chars = sum(_id_chars(i) for i in members)
        if len(members) <= 2 or single_chars <= range_chars:
            for value in members:
                if current.length(extra_singles=(value,)) > room:
                    flush()
                current.add_single(value)
            return
        if current.length(extra_range=range_chars) > room:
            flush()
            if current.length(extra_range=range_chars) > room:  # too many gaps for one request: halve the run
                middle = len(members) // 2
                place(members[:middle])
                place(members[middle:])
                return
        current.add_range(lo, hi, excluded, range_chars)

    for block in _blocks(ordered):
        place(block)
    flush()
    return out


def covering_conditions(field_name: str, ids: Iterable[int], room: int, rows_per_id: float) -> list[str]:
    """Conditions on ``field_name`` that together match every id of ``ids`` (and, where that takes fewer requests
    for ``rows_per_id`` records per id, some ids between them: the caller drops their records), each at most
    ``room`` characters URL-encoded, no id matched twice."""
    ordered = sorted({int(i) for i in ids})
    if not ordered:
        return []
    exact = id_conditions(field_name, ordered, room)
    best, best_cost = exact, _requests([len(ordered) / len(exact)] * len(exact), rows_per_id)
    for gap in _PLAIN_GAPS:
        cover = _plain_cover(field_name, ordered, room, gap)
        matched = [count for _condition, count in cover]
        if sum(matched) - len(ordered) > MAX_WASTE_SHARE * len(ordered):
            break  # wider gaps only match more
        cost = _requests(matched, rows_per_id)
        if (cost, len(cover)) < (best_cost, len(best)):
            best, best_cost = [condition for condition, _count in cover], cost
    return best


def _requests(matched: Sequence[float], rows_per_id: float) -> int:
    """Requests a cover takes: each condition at least one, then one per page of its expected records."""
    return sum(max(1, math.ceil(count * rows_per_id / PAGE)) for count in matched)


def _plain_cover(field_name: str, ordered: list[int], room: int, gap: float) -> list[tuple[str, int]]:
    """(condition, ids it matches): runs joined over gaps of at most ``gap`` ids, written as plain ranges (lone
    ids in a list), packed in id order."""
    blocks: list[list[int]] = []
    for value in ordered:
        if blocks and value - blocks[-1][-1] - 1 <= gap:
            blocks[-1].append(value)
        else:
            blocks.append([value])
    out: list[tuple[str, int]] = []
    current, matched = _Condition(field_name), 0

    def flush() -> None:
        nonlocal current, matched
        if not current.empty():
            out.append((current.render(), matched))
        current, matched = _Condition(field_name), 0

    for block in blocks:
        lo, hi = block[0], block[-1]
        if lo == hi:
            if current.length(extra_singles=(lo,)) > room:
                flush()
            current.add_single(lo)
            matched += 1
            continue
        chars = encoded_len(_range_term(field_name, lo, hi, ()))
        if current.length(extra_range=chars) > room:
            flush()
        current.add_range(lo, hi, (), chars)
        matched += hi - lo + 1
    flush()
    return out
