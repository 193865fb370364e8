"""PDF speed without shortcuts in what comes out: one layout pass, fonts built once per process, footers drawn
onto the laid-out pages, and nothing of one render (a tenant's logo) carried into the next."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from PIL import Image
from pypdf import PdfReader
from reportlab.platypus.doctemplate import BaseDocTemplate
from xhtml2pdf import context as xhtml2pdf_context

from app.branding.model import default_branding
from app.invoices import pdf
from app.invoices.samples import sample_document


def _pages(data: bytes) -> list[str]:
    return [re.sub(r"\s+", " ", page.extract_text() or "") for page in PdfReader(io.BytesIO(data)).pages]


def _png(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def _image_sizes(data: bytes) -> list[tuple[int, int]]:
    sizes = []
    for page in PdfReader(io.BytesIO(data)).pages:
        for image in page.images:
            sizes.append(image.image.size)
    return sizes


def test_a_long_invoice_is_laid_out_in_one_pass_and_every_page_says_page_x_of_y(monkeypatch):
    passes = []
    original = BaseDocTemplate.build

    def counting_build(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        passes.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BaseDocTemplate, "build", counting_build)
    doc = sample_document(120, "USD")
    pages = _pages(pdf.render_pdf(doc, default_branding(), logo=None, page_size="A4"))
    assert len(passes) == 1
    assert len(pages) > 3
    for n, text in enumerate(pages, start=1):
        assert f"Invoice {doc.number} · Page {n} of {len(pages)}" in text


def test_the_html_asks_xhtml2pdf_for_no_page_count():
    html = pdf.html_for(sample_document(5, "USD"), default_branding(), logo=None, page_size="Letter")
    assert "pdf:pagecount" not in html and "-pdf-frame-content" not in html


def test_fonts_are_built_once_per_process_not_per_render(monkeypatch):
    branding = replace(default_branding(), font="noto-serif")
    doc = replace(sample_document(3, "EUR"), top_comment="消費税 included")
    pdf.render_pdf(doc, branding, logo=None)  # the first render of a family builds it
    built = []
    real = xhtml2pdf_context.TTFont

    def counting_ttfont(*args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(xhtml2pdf_context, "TTFont", counting_ttfont)
    monkeypatch.setattr(pdf, "TTFont", counting_ttfont)
    for _ in range(2):
        text = " ".join(_pages(pdf.render_pdf(doc, branding, logo=None)))
        assert "消費税" in text and "included" in text
    assert built == []
    # The process-wide caches hold fonts and the stylesheet only, and are bounded.
    assert pdf._metrics.cache_info().maxsize == 16 and pdf._pdf_css.cache_info().maxsize == 4


def test_one_tenants_logo_never_reaches_the_next_pdf():
    doc, branding = sample_document(2, "USD"), default_branding()
    first = pdf.render_pdf(doc, branding, logo=_png((200, 30, 30), (300, 90)))
    assert _image_sizes(first) == [(300, 90)]
    assert _image_sizes(pdf.render_pdf(doc, branding, logo=None)) == []
    second = pdf.render_pdf(doc, branding, logo=_png((30, 30, 200), (120, 120)))
    assert _image_sizes(second) == [(120, 120)]
    pixel = next(iter(PdfReader(io.BytesIO(second)).pages[0].images)).image.convert("RGB").getpixel((5, 5))
    assert pixel == (30, 30, 200)


def test_the_footer_draws_what_the_family_lacks_in_the_fallback_font():
    doc = replace(sample_document(1, "JPY"), number="請求-7")
    data = pdf.render_pdf(doc, default_branding(), logo=None, page_size="A4")
    pages = _pages(data)
    # Two runs, two fonts: text extraction may put a space where the font changes.
    assert re.search(rf"Invoice 請求 ?-7 · Page 1 of {len(pages)}", pages[0]), pages[0][-60:]
    page = PdfReader(io.BytesIO(data)).pages[0]
    footer = page["/Resources"]["/XObject"][pdf.FOOTER_XOBJECT].get_object()
    fonts = {str(ref.get_object()["/BaseFont"]) for ref in footer["/Resources"]["/Font"].values()}
    assert any("DroidSansFallback" in name for name in fonts), fonts
    assert any("DejaVuSans" in name for name in fonts), fonts


@pytest.mark.parametrize("page_size", ["A4", "Letter"])
def test_the_footer_sits_inside_the_bottom_margin_right_aligned(page_size):
    data = pdf.render_pdf(sample_document(1, "USD"), default_branding(), logo=None, page_size=page_size)
    page = PdfReader(io.BytesIO(data)).pages[0]
    found = []

    def visit(text, cm, tm, font_dict, font_size):  # type: ignore[no-untyped-def]
        if "· Page 1 of " in text:
            found.append((tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5]))

    page.extract_text(visitor_text=visit)
    assert found, "footer text not found"
    x, y = found[0]
    assert abs(y - pdf.FOOTER_BASELINE) < 0.5
    assert x < float(page.mediabox.width) - pdf.FOOTER_RIGHT


def test_the_fallback_font_is_declared_only_for_a_document_that_uses_it():
    plain = pdf.html_for(sample_document(2, "USD"), default_branding(), logo=None)
    assert pdf.FALLBACK_FONT.regular not in plain
    cjk_doc = replace(sample_document(2, "USD"), top_comment="消費税")
    cjk = pdf.html_for(cjk_doc, default_branding(), logo=None)
    assert cjk.count(pdf.FALLBACK_FONT.regular) == 2 and 'class="bi-fb"' in cjk
    assert "消費税" in _pages(pdf.render_pdf(cjk_doc, default_branding(), logo=None))[0]


def test_text_that_spells_out_the_fallback_declaration_stays_in_the_document():
    # Escaping turns its quotes into entities, so it can never be what the unused declaration's removal matches.
    typed = str(pdf.FALLBACK_FACES)
    html = pdf.html_for(replace(sample_document(1, "USD"), top_comment=typed), default_branding(), logo=None)
    assert pdf.FALLBACK_FONT.regular in html.split("</style>", 1)[1]


def test_drawing_the_footers_adds_one_small_font_not_a_copy_of_the_pages():
    html, footer = pdf._prepare(sample_document(200, "USD"), default_branding(), logo=None, page_size="A4")
    body = pdf.html_to_pdf(html)
    stamped = pdf.stamp_footers(body, footer)
    assert len(PdfReader(io.BytesIO(stamped)).pages) == len(PdfReader(io.BytesIO(body)).pages) > 5
    assert len(stamped) - len(body) < 30_000, (len(body), len(stamped))
