"""The invoice documents' own Jinja environment: where their templates, fonts and stylesheet live, and ``|t``.

The document templates are in app/templates/invoices/document/ (``_body.html`` for the web fragment and the PDF
alike, ``pdf.html`` around it for xhtml2pdf). Autoescape is on for every template here, whatever the file name,
because everything from ConnectWise is untrusted text.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

import markupsafe
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape

from app.invoices.document import InvoiceDocument

APP_DIR = Path(__file__).resolve().parent.parent
TEMPLATES = APP_DIR / "templates"
BODY_TEMPLATE = "invoices/document/_body.html"
PDF_TEMPLATE = "invoices/document/pdf.html"
FONT_DIR = APP_DIR / "static" / "fonts"
CSS_FILE = APP_DIR / "static" / "css" / "invoice.css"
PageSize = Literal["A4", "Letter"]
PAGE_SIZES = {"A4": "a4", "Letter": "letter"}
LETTER_COUNTRIES = ("US", "CA")  # where Letter is the paper in the drawer; A4 everywhere else

def page_size_for(doc: InvoiceDocument, choice: str) -> PageSize:
    """The paper of this document: the branding's A4 or Letter, or for "auto" the remit-to country's."""
    if choice == "Letter":
        return "Letter"
    if choice == "A4":
        return "A4"
    country = doc.remit_to.country if doc.remit_to else ""
    return "Letter" if country in LETTER_COUNTRIES else "A4"


_env_lock = threading.Lock()
_env: Environment | None = None


def environment() -> Environment:
    """One Jinja environment for invoice templates, autoescaping every template (``.html`` or not)."""
    global _env
    with _env_lock:
        if _env is None:
            env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                              autoescape=select_autoescape(default=True, default_for_string=True),
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
            env.filters["t"] = _text_filter
            _env = env
        return _env


@pass_context
def _text_filter(ctx: Any, value: Any) -> markupsafe.Markup:
    """``|t``: escape; in the PDF also wrap runs of characters the font lacks (``t_glyphs``) in a span set in
    the fallback font (CJK), since xhtml2pdf does no per-glyph font fallback the way browsers do."""
    text = "" if value is None else str(value)
    glyphs = ctx.get("t_glyphs") if ctx.get("medium") == "pdf" else None
    if not glyphs or all(ord(c) in glyphs or c.isspace() for c in text):
        return markupsafe.escape(text)
    out: list[str] = []
    run: list[str] = []
    missing = False
    for ch in text:
        lacks = ord(ch) not in glyphs and not ch.isspace()
        if lacks != missing and run:
            out.append(_run("".join(run), missing))
            run = []
        missing = lacks
        run.append(ch)
    if run:
        out.append(_run("".join(run), missing))
    return markupsafe.Markup("".join(out))  # noqa: S704 - every run is escaped in _run


def _run(text: str, fallback: bool) -> str:
    escaped = str(markupsafe.escape(text))
    return f'<span class="bi-fb">{escaped}</span>' if fallback else escaped
