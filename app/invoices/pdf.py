"""The PDF: the same document body as the web page, laid out by xhtml2pdf with the shipped fonts embedded.

What xhtml2pdf does not do for us, done here: column widths sized to the content (measured with the font's
metrics, the description takes what is left), a fallback font for characters the chosen family lacks (CJK),
the logo as a data URI (only PNG or JPEG bytes are accepted), and the "Page X of Y" footer: xhtml2pdf can only
print a page count by laying the whole document out twice (``<pdf:pagecount />`` forces a second pass, about
half the render), so the body is laid out once and each page's footer is drawn afterwards with ReportLab,
where the count is known, and merged onto its page. And a table cell holding one paragraph is given to the table
as that paragraph, without the keep-in-frame xhtml2pdf puts around every cell (same page, a fifth less work).

Every layout runs under one resource policy: ``data:`` URIs and the files of the shipped fonts folder, nothing
else, so markup that slipped past escaping can never make a render fetch a URL or read a file.
"""

from __future__ import annotations

import base64
import io
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import markupsafe
from PIL import Image
from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, FloatObject, NameObject
from reportlab.lib.colors import HexColor
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from xhtml2pdf import pisa
from xhtml2pdf import tables as xhtml2pdf_tables
from xhtml2pdf.config.resources import ResourceAccessPolicy
from xhtml2pdf.reportlab_paragraph import Paragraph
from xhtml2pdf.xhtml2pdf_reportlab import PmlKeepInFrame

from app.branding.model import FALLBACK_FONT, Branding, Font, check_colour
from app.invoices.document import InvoiceDocument
from app.invoices.templating import CSS_FILE, FONT_DIR, PAGE_SIZES, PDF_TEMPLATE, PageSize, environment
from app.invoices.view_model import view

log = logging.getLogger(__name__)
POINTS_PER_MM = 72 / 25.4
# Content width: page width less the 1.5 cm side margins of pdf.html.
CONTENT_WIDTH = {"A4": (210 - 30) * POINTS_PER_MM, "Letter": (215.9 - 30) * POINTS_PER_MM}
LINE_SIZE, HEAD_SIZE, CELL_PADDING = 8.5, 7.5, 8.5  # font sizes and left+right cell padding (pt) of invoice.css
TEXT_SHARE = {"c-desc": 3.0, "c-detail": 1.6, "c-member": 1.0}


class PdfError(RuntimeError):
    """xhtml2pdf could not lay the invoice out (a bug on our side, never the customer's data)."""


def _font_root() -> Path:
    return FONT_DIR.resolve()


# The gate itself: xhtml2pdf reads fonts and a few other resources without asking the link_callback, so the
# policy (no network at all, local reads only under the fonts folder) is what every fetch is checked against.
RESOURCE_POLICY = ResourceAccessPolicy(allow_remote=False, allow_private_networks=False, base_dir=None,
                                       extra_roots=(_font_root(),), allow_remote_pdf_backgrounds=False)
# What a refused reference is rewritten to: returning nothing would make xhtml2pdf use the original.
REFUSED = "data:,"


def link_callback(uri: str, _relative: str | None = None) -> str:
    """Pass ``data:`` URIs and absolute paths (or file: URIs) of files inside the fonts folder; refuse the rest."""
    uri = str(uri or "").strip()
    if uri[:5].lower() == "data:":
        return uri
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file" and parts.netloc in ("", "localhost"):
        raw = unquote(parts.path)
    elif scheme == "" and not parts.netloc:
        raw = uri
    else:
        log.warning("PDF resource refused: scheme not allowed", extra={"event": "pdf.resource_refused"})
        return REFUSED
    path = Path(raw)
    root = _font_root()
    try:
        resolved = path.resolve(strict=True) if path.is_absolute() else None
    except (OSError, RuntimeError):
        resolved = None
    # resolve() follows links and collapses "..", so only a real file under the fonts folder gets through.
    if resolved is None or not resolved.is_file() or not resolved.is_relative_to(root):
        log.warning("PDF resource refused: not a shipped font", extra={"event": "pdf.resource_refused"})
        return REFUSED
    return str(resolved)


@dataclass(frozen=True)
class _Metrics:
    regular: str  # reportlab font names registered for width measuring
    bold: str
    glyphs: frozenset[int]


_register_lock = threading.Lock()


@lru_cache(maxsize=16)
def _metrics(font: Font) -> _Metrics:
    """Register the family with reportlab once (for measuring) and read which characters it has."""
    with _register_lock:
        names = []
        for suffix, filename in (("", font.regular), ("-Bold", font.bold)):
            name = f"bi-measure-{font.regular}{suffix}"
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(name, str(FONT_DIR / filename)))
            names.append(name)
        glyphs = frozenset(pdfmetrics.getFont(names[0]).face.charToGlyph)
    return _Metrics(names[0], names[1], glyphs)


LOGO_BOX = (60 * POINTS_PER_MM, 20 * POINTS_PER_MM)  # the most a logo takes on paper: 60 x 20 mm


def _logo_size(logo: bytes | None) -> tuple[str, str] | None:
    """Width and height (pt) that fit the logo in LOGO_BOX keeping its aspect (xhtml2pdf ignores max-height)."""
    if not logo:
        return None
    try:
        with Image.open(io.BytesIO(logo)) as image:
            width, height = image.size
    except (OSError, ValueError):
        return None
    if width <= 0 or height <= 0:
        return None
    scale = min(LOGO_BOX[0] / width, LOGO_BOX[1] / height)
    return f"{width * scale:.1f}", f"{height * scale:.1f}"


def _logo_data_uri(logo: bytes | None) -> str | None:
    if not logo:
        return None
    if logo.startswith(b"\x89PNG\r\n\x1a\n"):
        kind = "png"
    elif logo.startswith(b"\xff\xd8\xff"):
        kind = "jpeg"
    else:
        log.warning("invoice logo ignored: not PNG or JPEG bytes")
        return None
    return f"data:image/{kind};base64,{base64.b64encode(logo).decode()}"


def column_widths(context: dict[str, Any], metrics: _Metrics, width: float) -> dict[tuple[str, str], str]:
    """Widths (pt) per (section key, column key): numbers and dates as wide as their widest text, the text
    columns share the rest in fixed proportions so descriptions wrap instead of pushing numbers off the page."""
    tables: list[tuple[str, list[Any], list[tuple[Any, ...]]]] = [
        (s.key, list(s.columns), list(s.rows) + ([_subtotal_row(s)] if s.subtotal else []))
        for s in (*context["sections"], *context["settlements"])]
    if context["detail_groups"]:
        rows = [r for g in context["detail_groups"] for r in g["rows"]]
        rows += [tuple(_Text(t) for t in g["subtotal"]) for g in context["detail_groups"]]
        tables.append(("detail", list(context["detail_columns"]), rows))
    out: dict[tuple[str, str], str] = {}
    for key, columns, rows in tables:
        natural = []
        for i, col in enumerate(columns):
            head = stringWidth(col.label, metrics.bold, HEAD_SIZE)
            body = max((stringWidth(_text_of(r, i), metrics.regular, LINE_SIZE) for r in rows if i < len(r)),
                       default=0.0)
            natural.append(max(head, body) + CELL_PADDING)
        fixed = [i for i, c in enumerate(columns) if c.css not in TEXT_SHARE]
        flexible = [i for i, c in enumerate(columns) if c.css in TEXT_SHARE]
        used = sum(natural[i] for i in fixed)
        left = max(width - used, width * 0.25)
        if flexible:
            wanted = sum(natural[i] for i in flexible)
            if wanted <= left:
                # Everything fits on one line: extra room goes to the description.
                extra = left - wanted
                sizes = {i: natural[i] for i in flexible}
                first = next((i for i in flexible if columns[i].css == "c-desc"), flexible[0])
                sizes[first] += extra
            else:
                shares = {i: TEXT_SHARE[columns[i].css] for i in flexible}
                total = sum(shares.values())
                sizes = {i: min(natural[i], left * shares[i] / total) for i in flexible}
                spare = left - sum(sizes.values())
                grow = [i for i in flexible if sizes[i] < natural[i]]
                for i in grow:
                    sizes[i] += spare * shares[i] / sum(shares[j] for j in grow)
            for i, size in sizes.items():
                out[(key, columns[i].key)] = f"{size:.1f}"
        for i in fixed:
            out[(key, columns[i].key)] = f"{natural[i]:.1f}"
    return out


@dataclass(frozen=True)
class _Text:
    text: str


def _text_of(row: tuple[Any, ...], i: int) -> str:
    return row[i].text


def _subtotal_row(section: Any) -> tuple[Any, ...]:
    cells = [_Text("") for _ in section.columns]
    cells[-1] = _Text(section.subtotal)
    return tuple(cells)


# The fallback family's faces, declared only when |t put a character in it: the string has quotes, which
# escaped text from ConnectWise never does, and the <style> it sits in comes before any such text.
FALLBACK_FACES = markupsafe.Markup("\n".join(  # noqa: S704 - our own stylesheet, a path of ours
    f'@font-face {{ font-family: "{FALLBACK_FONT.css_family}"; src: url("{FONT_DIR / FALLBACK_FONT.regular}");'
    f"{weight} }}" for weight in ("", " font-weight: bold;")))
FALLBACK_SPAN = 'class="bi-fb"'


@dataclass(frozen=True)
class _Footer:
    """What each page's footer says before "· Page X of Y", and the fonts it is drawn in."""
    label: str
    font: _Metrics
    fallback: _Metrics


def _prepare(doc: InvoiceDocument, branding: Branding, *, logo: bytes | None,
             page_size: str) -> tuple[str, _Footer]:
    if page_size not in PAGE_SIZES:
        raise ValueError(f"page_size must be one of {', '.join(PAGE_SIZES)}")
    context = view(doc, branding)
    font: Font = context["font"]
    metrics = _metrics(font)
    html = environment().get_template(PDF_TEMPLATE).render(
        **context, medium="pdf", pdf_url=None, logo_src=_logo_data_uri(logo), logo_size=_logo_size(logo),
        page_size=PAGE_SIZES[page_size],
        widths=column_widths(context, metrics, CONTENT_WIDTH[page_size]),
        font_files={"regular": str(FONT_DIR / font.regular), "bold": str(FONT_DIR / font.bold)},
        fallback_faces=FALLBACK_FACES,
        pdf_css=markupsafe.Markup(_pdf_css(CSS_FILE.read_text("utf-8"))),  # noqa: S704 - our own stylesheet
        brand=check_colour("brand_colour", branding.brand_colour),
        accent=check_colour("accent_colour", branding.accent_colour),
        t_glyphs=metrics.glyphs,
    )
    if FALLBACK_SPAN not in html:
        # Nothing is set in the fallback family, so xhtml2pdf need not read (and hash) its 4 MB file.
        html = html.replace(FALLBACK_FACES, "", 1)
    label = f"{context.get('title') or doc.title} {doc.number}"
    return html, _Footer(label, metrics, _metrics(FALLBACK_FONT))


def html_for(doc: InvoiceDocument, branding: Branding, *, logo: bytes | None, page_size: str = "A4") -> str:
    """The HTML xhtml2pdf lays out: the PDF template around the same document body as the page (no footer:
    that is drawn onto the laid-out pages, see ``stamp_footers``)."""
    return _prepare(doc, branding, logo=logo, page_size=page_size)[0]


def render_pdf(doc: InvoiceDocument, branding: Branding, *, logo: bytes | None,
               page_size: PageSize | str = "A4") -> bytes:
    """The invoice as a PDF (xhtml2pdf), A4 or Letter, fonts embedded, "Page X of Y" on every page."""
    html, footer = _prepare(doc, branding, logo=logo, page_size=page_size)
    try:
        body = html_to_pdf(html)
    except PdfError as exc:
        raise PdfError(f"xhtml2pdf failed to lay out invoice {doc.id} ({exc})") from exc
    return stamp_footers(body, footer)


def html_to_pdf(html: str) -> bytes:
    """Lay out ``html`` under the resource policy (the one place the app calls xhtml2pdf)."""
    out = io.BytesIO()
    with _cells_as_their_paragraph():
        result = pisa.CreatePDF(html, dest=out, encoding="utf-8", link_callback=link_callback,
                                resource_policy=RESOURCE_POLICY)
    if result.err:
        raise PdfError(f"{result.err} layout errors")
    return out.getvalue()


_TD_END = xhtml2pdf_tables.pisaTagTD.end
_layout_lock = threading.Lock()


def _td_end_bare_paragraph(tag: Any, c: Any) -> None:
    """xhtml2pdf's end of a <td>/<th>, then a cell holding one paragraph given to the table as that paragraph."""
    _TD_END(tag, c)
    rows = c.tableData.data
    if not rows or not rows[-1]:
        return
    row = rows[-1]
    cell = row[-1]
    # xhtml2pdf puts every cell in a shrink-to-fit keep-in-frame; around one paragraph (which wraps to the cell's
    # width itself) it changes nothing on paper but costs a wrap and a draw of its own per cell, about a fifth
    # of a long invoice. Anything else in a cell (images, nested tables, several blocks) keeps its frame.
    if (type(cell) is PmlKeepInFrame and cell.mode == "shrink" and len(cell._content) == 1
            and isinstance(cell._content[0], Paragraph)):
        row[-1] = list(cell._content)


@contextmanager
def _cells_as_their_paragraph() -> Iterator[None]:
    """xhtml2pdf's cell end swapped for ``_td_end_bare_paragraph`` during one layout (html_to_pdf is the app's
    only xhtml2pdf call, and layouts take this lock, so no other layout sees the swap)."""
    with _layout_lock:
        xhtml2pdf_tables.pisaTagTD.end = _td_end_bare_paragraph
        try:
            yield
        finally:
            xhtml2pdf_tables.pisaTagTD.end = _TD_END


# Where pdf.html's footer frame used to put its line: right-aligned on the 1.5 cm side margin, 7.5 pt grey.
FOOTER_SIZE = 7.5
FOOTER_BASELINE = 36.3  # pt above the page's bottom edge
FOOTER_RIGHT = 15 * POINTS_PER_MM
FOOTER_COLOUR = HexColor("#666666")
FOOTER_XOBJECT = "/BiPageFooter"


def _runs(text: str, footer: _Footer) -> list[tuple[str, str]]:
    """``text`` cut into (reportlab font name, text) runs: characters the family lacks go to the fallback."""
    runs: list[tuple[str, str]] = []
    for ch in text:
        name = (footer.font.regular if ord(ch) in footer.font.glyphs or ch.isspace()
                else footer.fallback.regular)
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1] + ch)
        else:
            runs.append((name, ch))
    return runs


def stamp_footers(body: bytes, footer: _Footer) -> bytes:
    """Draw "<label> · Page X of Y" on every page of ``body`` (one ReportLab page per page, merged on top)."""
    reader = PdfReader(io.BytesIO(body))
    count = len(reader.pages)
    stamps = io.BytesIO()
    canvas = Canvas(stamps, pageCompression=1)
    for number, page in enumerate(reader.pages, start=1):
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        canvas.setPageSize((width, height))
        runs = _runs(f"{footer.label} · Page {number} of {count}", footer)
        x = width - FOOTER_RIGHT - sum(stringWidth(text, name, FOOTER_SIZE) for name, text in runs)
        canvas.setFillColor(FOOTER_COLOUR)
        for name, text in runs:
            canvas.setFont(name, FOOTER_SIZE)
            canvas.drawString(x, FOOTER_BASELINE, text)
            x += stringWidth(text, name, FOOTER_SIZE)
        canvas.showPage()
    canvas.save()
    writer = PdfWriter(clone_from=reader)
    for page, stamp in zip(writer.pages, PdfReader(stamps).pages, strict=True):
        _draw_on_top(writer, page, stamp)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _draw_on_top(writer: PdfWriter, page: PageObject, stamp: PageObject) -> None:
    """Draw ``stamp`` over ``page`` as a form XObject: the stamp keeps its own resources (so its font names
    cannot clash with the page's) and neither content stream is decoded, parsed or re-written."""
    content = stamp.get_contents()
    if content is None:
        return
    form = DecodedStreamObject()
    form.set_data(content.get_data())
    form.update({
        NameObject("/Type"): NameObject("/XObject"),
        NameObject("/Subtype"): NameObject("/Form"),
        NameObject("/BBox"): ArrayObject([FloatObject(v) for v in stamp.mediabox]),
        NameObject("/Resources"): stamp["/Resources"].clone(writer),
    })
    form_ref = writer._add_object(form.flate_encode())
    resources = page.setdefault(NameObject("/Resources"), DictionaryObject()).get_object()
    xobjects = resources.setdefault(NameObject("/XObject"), DictionaryObject()).get_object()
    xobjects[NameObject(FOOTER_XOBJECT)] = form_ref
    draw = DecodedStreamObject()
    draw.set_data(f"q {FOOTER_XOBJECT} Do Q".encode())
    existing = page.raw_get("/Contents")  # the reference: a stream put in directly would be written twice
    target = existing.get_object()
    streams = list(target) if isinstance(target, ArrayObject) else [existing]
    page[NameObject("/Contents")] = ArrayObject([*streams, writer._add_object(draw)])


# Classes that _body.html puts on table rows (never on a table or tbody) and that invoice.css styles cells under.
ROW_CELL = re.compile(r"(\.bi-(?:t-total|t-balance|subtotal|group|section-title|colheads)) (t[dh])\b")
# Classes that _body.html puts on tables holding no other table: their cells are always table > row group > row >
# cell (html5lib adds the <tbody> where the markup has none). Two "*" steps weigh nothing, so "table > * > * > td"
# matches the same cells as "table td" with the same weight, and a cell of another table fails after three steps
# instead of a walk up to <html>.
TABLE_CELL = re.compile(r"(\.bi-(?:lines|meta|totals|parties)) ((?:t[dh]|\.c-[a-z]+)\b)")
TABLE_TBODY_CELL = re.compile(r"\.bi-lines tbody (td\b|\.bi-subtotal >)")


@lru_cache(maxsize=4)
def _pdf_css(web_css: str) -> str:
    """The web stylesheet plus what differs on paper (no page padding, no max width, fallback font)."""
    # xhtml2pdf warns on every render about properties it does not implement; paper does not need them.
    web_css = re.sub(r"\s*(border-collapse|box-sizing)\s*:[^;]+;", "", web_css)
    # xhtml2pdf tests a descendant selector by walking every ancestor up to <html> whenever it fails, for every
    # cell; these classes sit on the cells' own <tr>, so "row > cell" matches the same cells (and weighs the same)
    # with one step. About a tenth of a long invoice's layout.
    web_css = ROW_CELL.sub(r"\1 > \2", web_css)
    web_css = TABLE_TBODY_CELL.sub(lambda m: ".bi-lines > tbody > " + ("* > td" if m[1] == "td" else ".bi-subtotal >"),
                                   web_css)
    web_css = TABLE_CELL.sub(r"\1 > * > * > \2", web_css)
    return web_css + (
        "\n.bi-invoice { padding: 0; max-width: none; }\n"
        f".bi-fb {{ font-family: \"{FALLBACK_FONT.css_family}\"; }}\n"
    )
