"""The keyword rule: a watched word or phrase in customer-visible text (the invoice's comments, product
descriptions, time and expense notes), case ignored, matched as whole words so "rate" does not match "accurate"."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from app.review.rules.history import History
from app.review.rules.invoice import InvoiceView, quote, reads, time_label
from app.review.rules.model import Finding

Settings = Mapping[str, Any]


def _pattern(keyword: str) -> re.Pattern[str]:
    # Word boundaries only where the keyword itself starts or ends with a word character ("TODO:", "#internal").
    head = r"(?<!\w)" if re.match(r"\w", keyword) else ""
    tail = r"(?!\w)" if re.search(r"\w$", keyword) else ""
    return re.compile(head + r"\s+".join(re.escape(w) for w in keyword.split()) + tail, re.IGNORECASE)


def _texts(view: InvoiceView) -> Iterator[tuple[str, int, str, str]]:
    """(target type, target id, where, text) for every piece of customer-visible text."""
    h = view.header
    if reads(h, "topComment"):
        yield "invoice", h.id, "the invoice's top comment", h.top_comment
    if reads(h, "bottomComment"):
        yield "invoice", h.id, "the invoice's bottom comment", h.bottom_comment
    for line in view.products:
        if line.reads("description", "customerDescription"):
            yield ("product", line.rec.id, f"the description of product line {line.rec.id}",
                   line.rec.description)
    for t in view.times:
        if reads(t, "notes"):
            yield "time_entry", t.id, f"the notes of {time_label(view, t, t.actual_hours)}", t.notes
    for e in view.expenses:
        if reads(e, "notes"):
            yield "expense", e.id, f"the notes of the {quote(e.type, 'expense')} expense", e.notes


def keyword(view: InvoiceView, cfg: Settings, history: History | None) -> Iterator[Finding]:
    patterns = [(k, _pattern(k)) for k in cfg["keywords"]]
    if not patterns:
        return
    hits: dict[tuple[str, int], tuple[list[str], list[str]]] = {}
    for target, target_id, where, text in _texts(view):
        found = [k for k, pattern in patterns if text and pattern.search(text)]
        if found:
            words, places = hits.setdefault((target, target_id), ([], []))
            words.extend(k for k in found if k not in words)
            places.append(where)
    for (target, target_id), (words, places) in hits.items():
        listed = ", ".join(f"'{w}'" for w in words)
        verb = "appears" if len(words) == 1 else "appear"
        yield Finding("keyword", "error", target, target_id,
                      f"Watched {'keyword' if len(words) == 1 else 'keywords'} {listed} {verb} in "
                      f"{' and '.join(places)}")
