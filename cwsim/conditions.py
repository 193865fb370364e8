"""The ConnectWise ``conditions`` grammar: tokenizer, recursive-descent parser and evaluator.

Grammar (case-insensitive keywords)::

    expr     := and_expr ( OR and_expr )*
    and_expr := unary ( AND unary )*
    unary    := '(' expr ')' | compare
    compare  := PATH op value | PATH [NOT] (CONTAINS | LIKE) value | PATH [NOT] IN '(' value (',' value)* ')'
    op       := '=' | '!=' | '<' | '<=' | '>' | '>='
    value    := STRING | NUMBER | DATETIME | TRUE | FALSE | NULL

ConnectWise runs on SQL Server with a case-insensitive collation, so string comparisons ignore case here too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["ConditionError", "parse", "compile_conditions", "resolve_path", "Compare", "And", "Or"]


class ConditionError(ValueError):
    """A malformed condition or one naming a field the model does not have."""


@dataclass(frozen=True)
class Token:
    kind: str  # 'path', 'op', 'string', 'number', 'datetime', 'kw', 'lparen', 'rparen', 'comma'
    value: Any
    pos: int


_KEYWORDS = {"and", "or", "not", "contains", "like", "in", "true", "false", "null"}
_OPS = ("!=", "<=", ">=", "=", "<", ">")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")


def parse_datetime(text: str) -> datetime:
    """Parse the datetimes ConnectWise accepts in ``[...]`` and emits in bodies."""
    raw = text.strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ConditionError(f"'{text}' is not a valid date") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "\"'":
            end = text.find(ch, i + 1)
            if end < 0:
                raise ConditionError(f"Unterminated string starting at position {i}")
            tokens.append(Token("string", text[i + 1 : end], i))
            i = end + 1
        elif ch == "[":
            end = text.find("]", i + 1)
            if end < 0:
                raise ConditionError(f"Unterminated date starting at position {i}")
            tokens.append(Token("datetime", parse_datetime(text[i + 1 : end]), i))
            i = end + 1
        elif ch == "(":
            tokens.append(Token("lparen", ch, i))
            i += 1
        elif ch == ")":
            tokens.append(Token("rparen", ch, i))
            i += 1
        elif ch == ",":
            tokens.append(Token("comma", ch, i))
            i += 1
        elif text.startswith(_OPS, i):
            op = next(o for o in _OPS if text.startswith(o, i))
            tokens.append(Token("op", op, i))
            i += len(op)
        elif (m := _NUMBER.match(text, i)) and (
            ch != "-" or not tokens or tokens[-1].kind in ("op", "lparen", "comma")
        ):
            raw = m.group(0)
            tokens.append(Token("number", float(raw) if "." in raw else int(raw), i))
            i = m.end()
        elif m := _PATH.match(text, i):
            word = m.group(0)
            kind = "kw" if word.lower() in _KEYWORDS else "path"
            tokens.append(Token(kind, word.lower() if kind == "kw" else word, i))
            i = m.end()
        else:
            raise ConditionError(f"Unexpected character '{ch}' at position {i}")
    return tokens


@dataclass(frozen=True)
class Compare:
    path: tuple[str, ...]
    op: str  # '=', '!=', '<', '<=', '>', '>=', 'contains', 'like', 'in'
    value: Any
    negate: bool = False


@dataclass(frozen=True)
class And:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Any, ...]


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise ConditionError("Unexpected end of condition")
        self.i += 1
        return tok

    def at_kw(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "kw" and tok.value == word

    def parse(self) -> Any:
        node = self.expr()
        if self.peek() is not None:
            tok = self.peek()
            raise ConditionError(f"Unexpected '{tok.value}' at position {tok.pos}")
        return node

    def expr(self) -> Any:
        parts = [self.and_expr()]
        while self.at_kw("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Any:
        parts = [self.unary()]
        while self.at_kw("and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Any:
        tok = self.take()
        if tok.kind == "lparen":
            node = self.expr()
            closing = self.take()
            if closing.kind != "rparen":
                raise ConditionError(f"Expected ')' at position {closing.pos}")
            return node
        if tok.kind != "path":
            raise ConditionError(f"Expected a field name at position {tok.pos}, found '{tok.value}'")
        return self.compare(tuple(tok.value.split("/")))

    def compare(self, path: tuple[str, ...]) -> Compare:
        tok = self.take()
        if tok.kind == "op":
            return Compare(path, tok.value, self.value())
        negate = False
        if tok.kind == "kw" and tok.value == "not":
            negate, tok = True, self.take()
        if tok.kind == "kw" and tok.value in ("contains", "like"):
            value = self.value()
            if not isinstance(value, str):
                raise ConditionError(f"'{tok.value}' needs a quoted string at position {tok.pos}")
            return Compare(path, tok.value, value, negate)
        if tok.kind == "kw" and tok.value == "in":
            return Compare(path, "in", self.value_list(), negate)
        raise ConditionError(f"Expected an operator after '{'/'.join(path)}' at position {tok.pos}")

    def value(self) -> Any:
        tok = self.take()
        if tok.kind in ("string", "number", "datetime"):
            return tok.value
        if tok.kind == "kw" and tok.value in ("true", "false"):
            return tok.value == "true"
        if tok.kind == "kw" and tok.value == "null":
            return None
        raise ConditionError(f"Expected a value at position {tok.pos}, found '{tok.value}'")

    def value_list(self) -> tuple[Any, ...]:
        tok = self.take()
        if tok.kind != "lparen":
            raise ConditionError(f"Expected '(' after 'in' at position {tok.pos}")
        values = [self.value()]
        while (tok := self.take()).kind == "comma":
            values.append(self.value())
        if tok.kind != "rparen":
            raise ConditionError(f"Expected ')' at position {tok.pos}")
        return tuple(values)


def parse(text: str) -> Any:
    """Parse a condition string into an AST of ``Compare``/``And``/``Or`` nodes."""
    tokens = tokenize(text)
    if not tokens:
        raise ConditionError("Empty condition")
    return _Parser(tokens).parse()


# --- evaluation ---------------------------------------------------------------------------------

_MISSING = object()


def resolve_path(record: dict, path: Iterable[str]) -> list[Any]:
    """Values found at ``path``; several when the path crosses a list (any-match semantics)."""
    current: list[Any] = [record]
    for part in path:
        nxt: list[Any] = []
        for item in current:
            if isinstance(item, list):
                item_list = item
            else:
                item_list = [item]
            for obj in item_list:
                if isinstance(obj, dict) and part in obj:
                    nxt.append(obj[part])
        current = nxt
    flat: list[Any] = []
    for value in current:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _like_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("[[]", i):  # ConnectWise's escape for a literal '['
            out.append(re.escape("["))
            i += 3
            continue
        ch = pattern[i]
        out.append(".*" if ch in "*%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE | re.DOTALL)


def _coerce(field: Any, literal: Any) -> tuple[Any, Any] | None:
    """Bring a field value and a literal to comparable types, or None when they cannot be compared."""
    if isinstance(literal, datetime):
        if isinstance(field, str):
            try:
                return parse_datetime(field), literal
            except ConditionError:
                return None
        return None
    if isinstance(literal, bool) or isinstance(field, bool):
        if isinstance(field, bool) and isinstance(literal, bool):
            return field, literal
        if isinstance(field, bool) and isinstance(literal, str) and literal.lower() in ("true", "false"):
            return field, literal.lower() == "true"
        return None
    if isinstance(literal, (int, float)):
        if isinstance(field, (int, float)):
            return field, literal
        try:
            return float(field), literal
        except (TypeError, ValueError):
            return None
    if isinstance(literal, str):
        if isinstance(field, (int, float)):
            try:
                return field, float(literal)
            except ValueError:
                return str(field).lower(), literal.lower()
        return str(field).lower(), literal.lower()
    return None


def _compare_one(field: Any, op: str, literal: Any) -> bool:
    if literal is None:
        if op == "=":
            return field is None or field == ""
        if op == "!=":
            return not (field is None or field == "")
        return False
    if field is None:
        return op == "!="
    if op in ("contains", "like"):
        text = str(field)
        if op == "contains":
            return literal.lower() in text.lower()
        return _like_regex(literal).match(text) is not None
    pair = _coerce(field, literal)
    if pair is None:
        return op == "!="
    a, b = pair
    if op == "=":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


@functools.lru_cache(maxsize=256)
def _int_literals(literals: tuple[Any, ...]) -> frozenset[int] | None:
    """An ``in`` list of integers only, as a set (an int field then compares by membership, as it would one by one)."""
    return frozenset(literals) if all(type(v) is int for v in literals) else None


def _evaluate_compare(node: Compare, record: dict) -> bool:
    values = resolve_path(record, node.path)
    if not values:
        values = [None]
    if node.op == "in":
        ints = _int_literals(node.value)
        hit = any((v in ints) if ints is not None and type(v) is int else
                  any(_compare_one(v, "=", lit) for lit in node.value) for v in values)
    elif node.op == "!=":
        hit = all(_compare_one(v, "!=", node.value) for v in values)
    else:
        hit = any(_compare_one(v, node.op, node.value) for v in values)
    return not hit if node.negate else hit


def evaluate(node: Any, record: dict) -> bool:
    if isinstance(node, And):
        return all(evaluate(p, record) for p in node.parts)
    if isinstance(node, Or):
        return any(evaluate(p, record) for p in node.parts)
    return _evaluate_compare(node, record)


def iter_paths(node: Any) -> Iterable[tuple[str, ...]]:
    if isinstance(node, (And, Or)):
        for part in node.parts:
            yield from iter_paths(part)
    else:
        yield node.path


def _map_paths(node: Any, fn: Callable[[tuple[str, ...]], tuple[str, ...]]) -> Any:
    if isinstance(node, And):
        return And(tuple(_map_paths(p, fn) for p in node.parts))
    if isinstance(node, Or):
        return Or(tuple(_map_paths(p, fn) for p in node.parts))
    return Compare(fn(node.path), node.op, node.value, node.negate)


def _info_alias(path: tuple[str, ...]) -> tuple[str, ...]:
    # Integrators filter on bare `lastUpdated`; the value lives in `_info` on the wire.
    return ("_info", path[0]) if path in (("lastUpdated",), ("dateEntered",)) else path


def compile_conditions(
    text: str,
    known_field: Callable[[tuple[str, ...]], bool] | None = None,
) -> tuple[Any, Callable[[dict], bool]]:
    """Parse ``text``; return the AST and a predicate over API-shaped records.

    ``known_field`` rejects paths the model lacks, like ConnectWise's "x is not a recognized name.".
    """
    node = parse(text)
    if known_field is not None:
        node = _map_paths(node, lambda p: p if known_field(p) else _info_alias(p))
        for path in iter_paths(node):
            if not known_field(path):
                raise ConditionError(f"{'/'.join(path)} is not a recognized name.")
    return node, lambda record: evaluate(node, record)


_MAX_SPAN = 100_000  # a bounded range wider than this is not worth listing id by id


def id_constraint(node: Any, path: tuple[str, ...]) -> set[int] | None:
    """Ids a top-level AND conjunct pins ``path`` to (``path = N`` / ``path in (..)``, or an OR of those and of
    bounded ranges ``(path >= a and path <= b ...)``), else None. A superset is fine: the predicate still runs.

    Lets collections with lazily built children skip materialising rows that cannot match.
    """
    return _pinned(node, path)


def _ints(values: Iterable[Any]) -> set[int] | None:
    values = tuple(values)
    return set(values) if all(isinstance(v, int) and not isinstance(v, bool) for v in values) else None


def _pinned(node: Any, path: tuple[str, ...]) -> set[int] | None:
    """The ids ``node`` can match on ``path`` at most, or None when it does not bound them."""
    if isinstance(node, Compare):
        if node.path != path or node.negate:
            return None
        return _ints((node.value,)) if node.op == "=" else _ints(node.value) if node.op == "in" else None
    if isinstance(node, Or):
        out: set[int] = set()
        for part in node.parts:
            values = _pinned(part, path)
            if values is None:
                return None
            out |= values
        return out
    if isinstance(node, And):
        found: set[int] | None = None
        for part in node.parts:
            values = _pinned(part, path)
            if values is not None:
                found = values if found is None else found & values
        if found is not None:
            return found
        low = [p.value for p in node.parts if isinstance(p, Compare) and p.path == path and p.op == ">="]
        high = [p.value for p in node.parts if isinstance(p, Compare) and p.path == path and p.op == "<="]
        bounds = _ints([*low, *high])
        if not low or not high or bounds is None or min(high) - max(low) > _MAX_SPAN:
            return None
        return set(range(max(low), min(high) + 1))
    return None
