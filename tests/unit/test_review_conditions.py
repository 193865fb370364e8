"""The review sweep's id conditions: every URL they make stays under ConnectWise's ~2,000 characters, and the
conditions together match exactly the ids asked for (read with the simulator's own parser of the ConnectWise
grammar), so no line of an invoice that was not asked for is read; a cover that reads a few more, where that saves
requests, matches each id once and at most as many others as asked for."""

from __future__ import annotations

import random
from urllib.parse import urlencode

import pytest

from app.review.conditions import MAX_URL, MAX_WASTE_SHARE, covering_conditions, encoded_len, id_conditions, room
from cwsim.conditions import And, Compare, Or, compile_conditions, parse

API_BASE = "https://api-na.myconnectwise.net/v2025_1/apis/3.0"
TIME_FIELDS = ",".join(f"field{i}/name" for i in range(25))  # a long projection, as the time entries' is


def _ids_of(node, path: tuple[str, ...], universe: set[int]) -> set[int]:
    """The ids of ``universe`` a parsed condition matches (the few operators an id condition uses)."""
    if isinstance(node, And):
        out = set(universe)
        for part in node.parts:
            out &= _ids_of(part, path, universe)
        return out
    if isinstance(node, Or):
        return set().union(*(_ids_of(part, path, universe) for part in node.parts))
    assert isinstance(node, Compare) and node.path == path, node
    listed = set(node.value) if node.op == "in" else set()
    tests = {">=": lambda i: i >= node.value, "<=": lambda i: i <= node.value, "=": lambda i: i == node.value,
             "in": lambda i: i in listed}
    hit = {i for i in universe if tests[node.op](i)}
    return universe - hit if node.negate else hit


def matched(conditions: list[str], field: str, ids: list[int]) -> list[int]:
    """Every id each condition matches among ``ids``, their gaps and their neighbours (an id matched twice
    appears twice), read with the simulator's parser of the ConnectWise grammar."""
    universe = {n for i in ids for n in range(max(i - 10, 0), i + 11)}
    out: list[int] = []
    for text in conditions:
        out.extend(sorted(_ids_of(parse(text), tuple(field.split("/")), universe)))
    return out


def url(path: str, params: dict, condition: str) -> str:
    return f"{API_BASE}/{path}?{urlencode({**params, 'conditions': condition})}"


def clustered(rng: random.Random, count: int, start: int, closed_share: float) -> list[int]:
    """Open invoice ids as ConnectWise has them: a recent run with some sent or closed between, a few old strays."""
    ids, n = [], start
    while len(ids) < count:
        if rng.random() >= closed_share:
            ids.append(n)
        n += 1
    return [*rng.sample(range(1, start // 2), 5), *ids]


@pytest.mark.parametrize("closed_share", [0.0, 0.05, 0.4, 0.9])
@pytest.mark.parametrize("count", [1, 7, 200, 1000, 3000])
def test_every_url_is_under_the_limit_and_the_ids_are_matched_exactly_once(count, closed_share):
    rng = random.Random(count * 1000 + int(closed_share * 100))
    ids = clustered(rng, count, 40_000, closed_share)
    params = {"pageSize": 1000, "page": 1, "fields": TIME_FIELDS, "orderBy": "id"}
    conditions = id_conditions("invoice/id", ids, room(API_BASE, "time/entries", params))
    assert conditions
    for condition in conditions:
        assert len(url("time/entries", params, condition)) < MAX_URL
        assert len(url("time/entries", {**params, "page": 100}, condition)) < MAX_URL  # later pages too
    assert matched(conditions, "invoice/id", ids) == sorted(set(ids))


def test_a_clustered_set_of_a_thousand_ids_fits_one_condition():
    rng = random.Random(7)
    ids = clustered(rng, 1000, 52_000, 0.05)
    conditions = id_conditions("invoice/id", ids, room(API_BASE, "procurement/products", {"pageSize": 1000}))
    assert len(conditions) == 1
    assert ">=" in conditions[0] and "not in" in conditions[0]  # a range with its gaps, not a list of 1,000


def test_a_scattered_set_is_split_into_as_few_conditions_as_fit():
    ids = list(range(10_000, 60_000, 97))  # no two within a merge gap: a plain list, split by room
    budget = room(API_BASE, "company/companies", {"pageSize": 1000, "page": 1})
    conditions = id_conditions("id", ids, budget)
    assert all(encoded_len(c) <= budget for c in conditions)
    per_condition = budget // len("%2C10000")
    assert len(conditions) <= -(-len(ids) // (per_condition - 1)) + 1
    assert sorted(int(i) for c in conditions for i in c.split("(")[1].rstrip(")").split(",")) == ids


def test_the_extra_text_of_a_condition_is_counted_in_its_room():
    since = "lastUpdated > [2026-11-30T09:00:00Z] and "
    ids = list(range(1, 3000, 2))
    params = {"pageSize": 1000, "page": 1, "fields": "id,invoice/id"}
    for condition in id_conditions("invoice/id", ids, room(API_BASE, "time/entries", params, since)):
        assert len(url("time/entries", params, since + condition)) < MAX_URL


def test_no_ids_no_condition_and_no_room_is_refused():
    assert id_conditions("invoice/id", [], 100) == []
    assert id_conditions("id", [5], 100) == ["id in (5)"]
    with pytest.raises(ValueError):
        id_conditions("invoice/id", [123456], 10)


def test_a_run_too_gappy_for_one_condition_is_halved_and_still_exact():
    ids = [i for i in range(1, 4000) if i % 3 != 0]  # one long block: every third id is a gap inside it
    budget = 600
    conditions = id_conditions("invoice/id", ids, budget)
    assert len(conditions) > 1 and all(encoded_len(c) <= budget for c in conditions)
    assert matched(conditions, "invoice/id", ids) == ids


def test_the_simulator_evaluates_a_condition_as_the_set_reading_does():
    ids = [3, 4, 5, 6, 9, 10, 11, 40, 41, 42, 43, 44, 45, 90]
    [condition] = id_conditions("invoice/id", ids, 1000)
    _node, predicate = compile_conditions(condition)
    assert [i for i in range(0, 100) if predicate({"invoice": {"id": i}})] == ids == matched([condition], "invoice/id", ids)


@pytest.mark.parametrize("rows_per_id", [0.05, 1.0, 4.0, 20.0])
@pytest.mark.parametrize("closed_share", [0.05, 0.4, 0.7])
def test_a_cover_matches_every_id_once_and_at_most_as_many_others_and_filtering_leaves_the_set(
        rows_per_id, closed_share):
    rng = random.Random(int(rows_per_id * 100) + int(closed_share * 10))
    ids = clustered(rng, 1000, 30_000, closed_share)
    params = {"pageSize": 1000, "page": 1, "fields": TIME_FIELDS}
    conditions = covering_conditions("invoice/id", ids, room(API_BASE, "time/entries", params), rows_per_id)
    for condition in conditions:
        assert len(url("time/entries", {**params, "page": 100}, condition)) < MAX_URL
    hits = matched(conditions, "invoice/id", ids)
    assert len(hits) == len(set(hits))  # no id twice: no line read twice
    wanted = set(ids)
    assert [i for i in hits if i in wanted] == sorted(wanted)  # what the caller keeps after dropping the others
    assert len(hits) - len(wanted) <= MAX_WASTE_SHARE * len(wanted)


def test_a_sparse_collection_over_interleaved_ids_takes_one_request_and_a_dense_one_stays_exact():
    rng = random.Random(3)
    ids = clustered(rng, 1000, 30_000, 0.4)
    space = room(API_BASE, "expense/entries", {"pageSize": 1000, "page": 1, "fields": TIME_FIELDS})
    assert len(id_conditions("invoice/id", ids, space)) > 2
    assert len(covering_conditions("invoice/id", ids, space, 0.1)) == 1
    dense = covering_conditions("invoice/id", ids, space, 20.0)  # 20,000 rows: reading more would cost pages
    assert dense == id_conditions("invoice/id", ids, space)
