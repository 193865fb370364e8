"""Filling a cover message's tokens (``{client_name}`` and friends): only known tokens are replaced, anything else
stays as typed. Never ``str.format`` on text a person wrote (``{0.__class__}`` must stay text)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from markupsafe import Markup, escape

TOKENS = ("client_name", "number", "amount_due", "due_date", "link", "sender")
_TOKEN = re.compile(r"\{([a-z_]{1,32})\}")


def render_message(template: str, tokens: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` whose name is in ``tokens`` replaced by its value; unknown tokens stay."""
    return _fill(template, lambda name: tokens.get(name))


def render_html(template: str, tokens: Mapping[str, str], link: str = "") -> str:
    """The same message as the email's HTML part: the text and every value escaped, line breaks kept, ``{link}`` a
    link. (A mail body, never put into a page.)"""

    def value(name: str) -> str | None:
        if name == "link" and link:
            return str(Markup('<a href="{0}">{0}</a>').format(link))
        raw = tokens.get(name)
        return None if raw is None else str(escape(raw))

    paragraphs = [p for p in re.split(r"\n\s*\n", template.replace("\r\n", "\n")) if p.strip()]
    parts = [_fill(str(escape(p)), value).replace("\n", "<br>\n") for p in paragraphs]
    return "".join(f"<p>{p}</p>\n" for p in parts)


def _fill(template: str, lookup: Callable[[str], str | None]) -> str:
    def replace(match: re.Match[str]) -> str:
        found = lookup(match.group(1))
        return match.group(0) if found is None else found

    return _TOKEN.sub(replace, template)
