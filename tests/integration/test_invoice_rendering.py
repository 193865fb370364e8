"""Rendering: the web fragment and the PDF show the same content, paginate properly, embed Unicode fonts and
keep everything from ConnectWise inert."""

from __future__ import annotations

import html
import io
import re
from dataclasses import replace
from decimal import Decimal

import pytest
from PIL import Image
from pypdf import PdfReader

from app.branding.model import TimeDetail, default_branding
from app.connectwise.client import Client, Credentials
from app.invoices.document import Line, Party
from app.invoices.html import branding_css, render_document_html
from app.invoices.pdf import render_pdf
from app.invoices.samples import sample_document
from app.invoices.service import reconstruct
from app.invoices.view_model import detail_columns, document_state, view

CLIENT_ID = "6f1b5c9e-0000-4000-8000-000000000001"
MONEY = {
    "USD": r"-?\$[\d,]+\.\d\d",
    "EUR": r"-?[\d.]+,\d\d\s€",
    "JPY": r"-?¥[\d,]+",
}


def make(sim) -> Client:  # type: ignore[no-untyped-def]
    return Client(Credentials(sim.url, sim.company_id, sim.public_key, sim.private_key), CLIENT_ID,
                  allow_loopback_http=True, sleep=lambda s: None)


def html_text(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment)))


def pdf_pages(data: bytes) -> list[str]:
    return [re.sub(r"\s+", " ", page.extract_text() or "") for page in PdfReader(io.BytesIO(data)).pages]


def figures(text: str, currency: str) -> list[str]:
    return sorted(re.sub(r"\s", " ", m) for m in re.findall(MONEY[currency], text))


@pytest.fixture(scope="module")
def docs(sim):  # type: ignore[no-untyped-def]
    sim.reset()
    with make(sim) as cw:
        return {i: reconstruct(cw, i) for i in (1, 7, 9, 10, 12, 16)}


@pytest.mark.parametrize("invoice_id", [1, 7, 9, 10, 12, 16])
def test_the_page_and_the_pdf_carry_the_same_figures(docs, invoice_id):
    doc = docs[invoice_id]
    branding = default_branding()
    page = html_text(str(render_document_html(doc, branding, logo_url=None, pdf_url=None)))
    pdf = " ".join(pdf_pages(render_pdf(doc, branding, logo=None, page_size="A4")))
    code = doc.currency.code
    assert figures(page, code) == figures(pdf, code)
    assert len(figures(page, code)) >= 4
    for needle in (doc.number, doc.bill_to.name, "Balance due"):
        assert needle in page and needle in pdf


def test_every_invoice_of_the_data_set_renders_and_one_of_each_display_type_makes_a_pdf(sim):
    sim.reset()
    seen = {}
    with make(sim) as cw:
        for invoice_id in sim.state.data["invoices"].ids():
            doc = reconstruct(cw, invoice_id)
            page = str(render_document_html(doc, default_branding(), logo_url=None, pdf_url=None))
            # What the document closes with follows what it is (issue 14): a credit memo states its credit,
            # a void invoice that nothing is due, every other one its balance.
            closing = {"credit": "Credit", "void": "Amount due"}.get(document_state(doc).kind, "Balance due")
            assert doc.number in page and closing in page
            if closing != "Balance due":
                assert "Balance due" not in page
            seen.setdefault(doc.display_type, doc)
    assert len(seen) == 10
    for doc in seen.values():
        text = " ".join(pdf_pages(render_pdf(doc, default_branding(), logo=None, page_size="Letter")))
        # ConnectWise's internal "Standard" is not printed; a credit memo's type is its title.
        shown = {"Standard": None, "Credit Memo": "Credit memo"}.get(doc.display_type, doc.display_type)
        assert doc.number in text and (shown is None or shown in text)
        if shown is None:
            assert "Standard" not in text


def test_sample_invoices_of_every_length_carry_the_same_figures_in_both():
    for lines, currency in ((1, "USD"), (30, "EUR"), (120, "JPY")):
        doc = sample_document(lines, currency)
        page = html_text(str(render_document_html(doc, default_branding(), logo_url=None, pdf_url=None)))
        pdf = " ".join(pdf_pages(render_pdf(doc, default_branding(), logo=None, page_size="Letter")))
        assert figures(page, currency) == figures(pdf, currency), (lines, currency)


def test_every_page_says_page_x_of_y_and_repeats_the_table_header():
    doc = sample_document(160, "USD")
    pages = pdf_pages(render_pdf(doc, default_branding(), logo=None, page_size="A4"))
    assert len(pages) > 4
    for n, text in enumerate(pages, start=1):
        assert f"Page {n} of {len(pages)}" in text
        if "DELL-LAT5450" in text:  # a page of the products table
            assert "Description Item Qty Unit price Amount" in text
        if "Anika Patel" in text:  # a page of the time-detail table
            assert "Date Member Notes Hours Rate Amount" in text


@pytest.mark.parametrize("page_size", ["A4", "Letter"])
def test_the_totals_block_is_never_split_across_pages(page_size):
    for lines in range(14, 44, 2):
        pages = pdf_pages(render_pdf(sample_document(lines, "USD", time_entries=0), default_branding(), logo=None,
                                     page_size=page_size))
        holding = [n for n, text in enumerate(pages) if re.search(r"(^| )Subtotal \$", text)]
        assert len(holding) == 1, (lines, holding)
        totals_page = pages[holding[0]]
        assert "Sales tax" in totals_page and "Balance due" in totals_page, lines


@pytest.mark.parametrize(("page_size", "box"), [("A4", (595, 842)), ("Letter", (612, 792))])
def test_a4_and_letter_page_sizes(page_size, box):
    reader = PdfReader(io.BytesIO(render_pdf(sample_document(1), default_branding(), logo=None,
                                             page_size=page_size)))
    width, height = (round(float(v)) for v in reader.pages[0].mediabox.upper_right)
    assert (width, height) == box


@pytest.mark.parametrize("font", ["dejavu-sans", "dejavu-serif", "noto-sans", "noto-serif"])
def test_unicode_names_render_with_the_chosen_font_embedded(font):
    doc = replace(sample_document(3, "EUR", company="Þekking ehf."),
                  top_comment="Zażółć gęślą jaźń – € ₹ ¥ – 消費税")
    branding = replace(default_branding(), font=font)
    data = render_pdf(doc, branding, logo=None, page_size="A4")
    text = pdf_pages(data)[0]
    for needle in ("Þekking ehf.", "Zażółć gęślą jaźń", "€ ₹ ¥", "消費税"):
        assert needle in text
    # Every font that draws text is embedded (ReportLab also lists Helvetica, selected only in empty text
    # objects: "BT /F1 10 Tf 12 TL ET").
    reader = PdfReader(io.BytesIO(data))
    drawing: set[str] = set()
    for page in reader.pages:
        fonts = {name: ref.get_object() for name, ref in page["/Resources"]["/Font"].items()}
        content = page.get_contents().get_data().decode("latin-1")
        for block in re.findall(r"BT(.*?)ET", content, re.S):
            if not re.search(r"(Tj|TJ)\s", block):
                continue
            for name in re.findall(r"(/F[\w+]+) [\d.]+ Tf", block):
                font_obj = fonts[name]
                drawing.add(str(font_obj["/BaseFont"]))
                descendant = font_obj.get("/DescendantFonts")
                descriptor = (descendant[0].get_object() if descendant else font_obj).get("/FontDescriptor")
                assert descriptor is not None and "/FontFile2" in descriptor.get_object(), font_obj["/BaseFont"]
    family = branding.font_info.regular.split("-")[0].split(".")[0]
    assert any(family in name for name in drawing), drawing
    assert any("DroidSansFallback" in name for name in drawing)  # 消費税
    page_html = str(render_document_html(doc, branding, logo_url=None, pdf_url=None))
    assert "Þekking ehf." in page_html and "Zażółć gęślą jaźń" in page_html and "€ ₹ ¥" in page_html


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)><a href="javascript:alert(2)">pay</a>'


def test_markup_from_connectwise_is_inert_in_the_page_and_the_pdf(docs):
    doc = docs[16]
    hostile_section = replace(doc.sections[0], lines=(Line(description=HOSTILE, detail=HOSTILE, quantity=Decimal(1),
                                                           rate=Decimal(1), amount=Decimal(1)),
                                                      *doc.sections[0].lines))
    doc = replace(doc, company_name=HOSTILE, bill_to=replace(doc.bill_to, name=HOSTILE, attention=HOSTILE),
                  top_comment=HOSTILE, number="INV-<b>1</b>", sections=(hostile_section, *doc.sections[1:]))
    page = str(render_document_html(doc, default_branding(), logo_url=None, pdf_url=None))
    assert "<script" not in page and "<img src=x" not in page and 'href="javascript' not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "<b>1</b>" not in page and "INV-&lt;b&gt;1&lt;/b&gt;" in page
    data = render_pdf(doc, default_branding(), logo=None, page_size="A4")
    text = " ".join(pdf_pages(data))
    assert '<script>alert("x")</script>' in text  # printed as text, not interpreted
    assert "INV-<b>1</b>" in text
    assert b"/JavaScript" not in data and b"/JS" not in data and b"javascript:" not in data.lower()


def test_the_web_fragment_has_no_inline_style_or_script(docs):
    page = str(render_document_html(docs[9], default_branding(), logo_url="/logo.png", pdf_url="/i/abc/pdf"))
    assert " style=" not in page and "<script" not in page and "<style" not in page
    assert 'href="/i/abc/pdf"' in page and 'src="/logo.png"' in page


def test_branding_colours_and_font_reach_page_css_and_pdf():
    branding = replace(default_branding(), brand_colour="#aa0011", accent_colour="#00bb22", font="noto-serif")
    css = branding_css(branding)
    assert "#aa0011" in css and "#00bb22" in css and "NotoSerif-Regular.ttf" in css
    data = render_pdf(sample_document(2), branding, logo=None, page_size="A4")
    assert b"NotoSerif" in data


def _logo(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (240, 80), (31, 58, 95)).save(out, kind)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
def test_a_png_or_jpeg_logo_is_drawn_in_the_pdf(kind):
    data = render_pdf(sample_document(1), default_branding(), logo=_logo(kind), page_size="A4")
    images = [img for page in PdfReader(io.BytesIO(data)).pages for img in page.images]
    assert images


def test_anything_else_given_as_a_logo_is_left_out():
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    data = render_pdf(sample_document(1), default_branding(), logo=svg, page_size="A4")
    assert not [img for page in PdfReader(io.BytesIO(data)).pages for img in page.images]


def test_fixed_fee_time_detail_hides_hours_rates_and_amounts_by_default(docs):
    doc = replace(sample_document(3), display_type="Fixed Fee")
    page = html_text(str(render_document_html(doc, default_branding(), logo_url=None, pdf_url=None)))
    detail = page.split("Time detail", 1)[1]
    assert "Hours" not in detail and "Rate" not in detail and "Amount" not in detail
    assert "Notes" in detail and "#4000" in detail
    pdf = " ".join(pdf_pages(render_pdf(doc, default_branding(), logo=None, page_size="A4")))
    assert "Date Member Notes" in pdf.split("Time detail", 1)[1] and "Hours" not in pdf.split("Time detail", 1)[1]


def test_a_time_detail_with_no_figures_shows_no_empty_subtotal_rows():
    doc = replace(sample_document(3), display_type="Fixed Fee")
    assert view(doc, default_branding())["detail_subtotals"] is False
    page = html_text(str(render_document_html(doc, default_branding(), logo_url=None, pdf_url=None)))
    assert "Subtotal" not in page.split("Time detail", 1)[1]
    assert view(replace(doc, display_type="Standard"), default_branding())["detail_subtotals"] is True


@pytest.mark.parametrize("display_type", ["Project", "Agreement", "Phase"])
def test_project_and_agreement_time_detail_hide_ticket_number_and_summary(display_type):
    doc = replace(sample_document(3), display_type=display_type)
    page = html_text(str(render_document_html(doc, default_branding(), logo_url=None, pdf_url=None)))
    detail = page.split("Time detail", 1)[1]
    assert "#4000" not in detail and "Network refresh" not in detail and "Hours" in detail


def test_notes_off_shows_the_work_role_in_their_place():
    settings = replace(TimeDetail(), notes=False)
    assert [c.key for c in detail_columns(settings)][:3] == ["date", "member", "work_role"]
    branding = replace(default_branding(), time_detail={**default_branding().time_detail, "standard": settings})
    doc = sample_document(2)
    page = html_text(str(render_document_html(doc, branding, logo_url=None, pdf_url=None)))
    detail = page.split("Time detail", 1)[1]
    assert "Help Desk" in detail and "Quick call" not in detail and "Replaced the failed drive" not in detail


def test_time_detail_can_be_switched_off_per_type():
    branding = replace(default_branding(), time_detail={**default_branding().time_detail,
                                                        "standard": replace(TimeDetail(), show=False)})
    context = view(sample_document(3), branding)
    assert context["detail_groups"] == []
    pdf = pdf_pages(render_pdf(sample_document(3), branding, logo=None, page_size="A4"))
    assert not any("Time detail" in p for p in pdf)


def test_optional_header_blocks_follow_the_branding(docs):
    doc = docs[16]
    doc = replace(doc, po_number="PO-777", remit_to=Party("Remit Co", ("1 Street",)))
    hidden = replace(default_branding(), show_remit_to=False, show_tax_ids=False, show_po=False)
    page = html_text(str(render_document_html(doc, hidden, logo_url=None, pdf_url=None)))
    assert "Remit to" not in page and "PO-777" not in page and doc.customer_tax_id not in page
    shown = html_text(str(render_document_html(doc, default_branding(), logo_url=None, pdf_url=None)))
    assert "Remit to" in shown and "PO-777" in shown and doc.customer_tax_id in shown


def test_the_pdf_renders_through_the_simulator_for_an_agreement_invoice(sim):
    with make(sim) as cw:
        doc = reconstruct(cw, 1)
    data = render_pdf(doc, default_branding(), logo=None, page_size="Letter")
    assert data.startswith(b"%PDF") and "Agreement" in pdf_pages(data)[0]
