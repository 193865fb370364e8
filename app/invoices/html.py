"""The invoice as a web fragment and the per-branding stylesheet pages load beside it (CSP forbids inline style).

The fragment is the document body template with ``medium="web"``; no inline style or script, classes from
invoice.css. The PDF is ``app.invoices.pdf``, from the same view model and body template.
"""

from __future__ import annotations

import markupsafe

from app.branding.model import FALLBACK_FONT, Branding, Font, check_colour
from app.invoices.document import InvoiceDocument
from app.invoices.templating import BODY_TEMPLATE, environment
from app.invoices.view_model import view

CJK_RANGES = "U+2E80-2FFF, U+3000-303F, U+3040-30FF, U+3100-31FF, U+3400-4DBF, U+4E00-9FFF, U+AC00-D7AF, U+F900-FAFF, U+FF00-FFEF"


def render_document_html(doc: InvoiceDocument, branding: Branding, *, logo_url: str | None,
                         pdf_url: str | None) -> markupsafe.Markup:
    """The branded invoice fragment for a page (no inline style or script; classes from invoice.css)."""
    context = view(doc, branding)
    html = environment().get_template(BODY_TEMPLATE).render(
        **context, logo_src=logo_url, pdf_url=pdf_url, medium="web")
    return markupsafe.Markup(html)  # noqa: S704 - rendered by an autoescaping environment


def branding_css(branding: Branding) -> str:
    """CSS text for the colours and font of a branding (served at a URL, since CSP forbids inline style).

    The values are validated (#rrggbb, a FONTS key), so nothing from a form reaches the CSS unchecked.
    """
    brand = check_colour("brand_colour", branding.brand_colour)
    accent = check_colour("accent_colour", branding.accent_colour)
    font = branding.font_info
    faces = _font_faces(font, "/static/fonts/")
    # The fallback face is fetched only for the CJK ranges the chosen family lacks.
    fallback = (f"@font-face {{ font-family: '{FALLBACK_FONT.css_family}'; "
                f"src: url('/static/fonts/{FALLBACK_FONT.regular}'); unicode-range: {CJK_RANGES}; }}")
    return (f"{faces}\n{fallback}\n.bi-invoice {{ --bi-brand: {brand}; --bi-accent: {accent}; "
            f"font-family: '{font.css_family}', '{FALLBACK_FONT.css_family}', {font.generic}; }}\n"
            f".bi-invoice .bi-pdf-button {{ background: {accent}; }}\n")


def _font_faces(font: Font, base: str) -> str:
    return (f"@font-face {{ font-family: '{font.css_family}'; src: url('{base}{font.regular}'); "
            f"font-weight: normal; font-style: normal; }}\n"
            f"@font-face {{ font-family: '{font.css_family}'; src: url('{base}{font.bold}'); "
            f"font-weight: bold; font-style: normal; }}")
