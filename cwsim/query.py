"""List query parameters: ``orderBy``, ``fields``, ``page``/``pageSize`` and the RFC-5988 ``Link`` header."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cwsim.conditions import resolve_path

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000


class QueryError(ValueError):
    """A bad query parameter; answered 400 with ``{"code": "InvalidObject", ...}``."""


def parse_int(name: str, raw: str | None, default: int, minimum: int = 1) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"The value '{raw}' is not valid for {name}.") from None
    if value < minimum:
        raise QueryError(f"{name} must be at least {minimum}.")
    return value


def page_params(args: Any) -> tuple[int, int]:
    """(page, pageSize); pageSize above 1000 is clamped, as the real API caps it."""
    page = parse_int("page", args.get("page"), 1)
    size = parse_int("pageSize", args.get("pageSize"), DEFAULT_PAGE_SIZE)
    return page, min(size, MAX_PAGE_SIZE)


def parse_order_by(text: str) -> list[tuple[tuple[str, ...], bool]]:
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise QueryError(f"orderBy '{part.strip()}' is not valid; expected 'field asc|desc'.")
        keys.append((tuple(words[0].split("/")), len(words) == 2 and words[1].lower() == "desc"))
    if not keys:
        raise QueryError("orderBy is empty.")
    return keys


def _sort_value(record: dict, path: tuple[str, ...]) -> tuple:
    values = resolve_path(record, path)
    value = values[0] if values else None
    if value is None or value == "":
        return (0, 0, "")
    if isinstance(value, bool):
        return (1, 0, int(value))
    if isinstance(value, (int, float)):
        return (1, 1, value)
    return (1, 2, str(value).lower())


def sort_records(records: list[dict], keys: list[tuple[tuple[str, ...], bool]]) -> list[dict]:
    """Stable multi-key sort; empties first ascending, like SQL Server's NULL ordering."""
    out = list(records)
    for path, desc in reversed(keys):
        out.sort(key=lambda r: _sort_value(r, path), reverse=desc)
    return out


def parse_fields(text: str) -> list[tuple[str, ...]]:
    return [tuple(p.strip().split("/")) for p in text.split(",") if p.strip()]


def project(record: Any, paths: Iterable[tuple[str, ...]]) -> Any:
    """Keep only ``paths`` (``a/b`` keeps ``b`` inside ``a``; through lists it applies per element)."""
    if isinstance(record, list):
        return [project(item, paths) for item in record]
    if not isinstance(record, dict):
        return record
    grouped: dict[str, list[tuple[str, ...]]] = {}
    whole: set[str] = set()
    for path in paths:
        if len(path) == 1:
            whole.add(path[0])
        else:
            grouped.setdefault(path[0], []).append(path[1:])
    out = {}
    for key, value in record.items():
        if key in whole:
            out[key] = value
        elif key in grouped:
            out[key] = project(value, grouped[key])
    return out


def _replace_param(query_string: str, name: str, value: int) -> str:
    """Echo the client's query string, raw, with ``name`` replaced (or appended)."""
    parts = [p for p in query_string.split("&") if p]
    out, replaced = [], False
    for part in parts:
        key = part.split("=", 1)[0]
        if key.lower() == name.lower():
            if not replaced:
                out.append(f"{key}={value}")
                replaced = True
        else:
            out.append(part)
    if not replaced:
        out.append(f"{name}={value}")
    return "&".join(out)


def link_header(url: str, query_string: str, page: int, page_size: int, total: int) -> str | None:
    """Navigable paging links: first/prev when past page 1, next/last when more pages follow."""
    last = max(1, -(-total // page_size))
    if last == 1 and page == 1:
        return None
    links = []
    if page > 1:
        links.append((1, "first"))
        links.append((min(page - 1, last), "prev"))
    if page < last:
        links.append((page + 1, "next"))
        links.append((last, "last"))
    return ", ".join(f'<{url}?{_replace_param(query_string, "page", n)}>; rel="{rel}"' for n, rel in links)


def forward_link(url: str, query_string: str, next_page_id: int | None) -> str:
    """Forward-only paging: ``next`` carries the last id seen; empty on the last page (header still sent)."""
    if next_page_id is None:
        return ""
    return f'<{url}?{_replace_param(query_string, "pageId", next_page_id)}>; rel="next"'
