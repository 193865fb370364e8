"""PDF table cells: a cell holding one paragraph is laid out as that paragraph (no keep-in-frame around it),
only during the app's own layouts, with nothing of the text lost however long a cell is."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader
from reportlab.platypus.tables import Table
from xhtml2pdf import tables as xhtml2pdf_tables
from xhtml2pdf.reportlab_paragraph import Paragraph
from xhtml2pdf.xhtml2pdf_reportlab import PmlKeepInFrame

from app.branding.model import default_branding
from app.invoices import pdf
from app.invoices.samples import sample_document


def _text(data: bytes) -> str:
    return re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages))


def _tables_laid_out(monkeypatch) -> list[Table]:
    seen: list[Table] = []
    original = Table.wrap

    def wrap(self, *args, **kwargs):
        seen.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Table, "wrap", wrap)
    return seen


def _cells(tables: list[Table]) -> list[list[object]]:
    """What each cell holds (ReportLab keeps a cell's flowables as a tuple, a lone flowable too)."""
    return [list(cell) if isinstance(cell, tuple | list) else [cell]
            for table in tables for row in table._cellvalues for cell in row]


def _is_frame_of_one_paragraph(flowable: object) -> bool:
    return (type(flowable) is PmlKeepInFrame and len(flowable._content) == 1
            and isinstance(flowable._content[0], Paragraph))


def test_a_cell_of_one_paragraph_is_laid_out_without_a_keep_in_frame(monkeypatch):
    seen = _tables_laid_out(monkeypatch)
    pdf.render_pdf(sample_document(5, "USD"), default_branding(), logo=None)
    cells = _cells(seen)
    bare = [c for c in cells if len(c) == 1 and type(c[0]) is not PmlKeepInFrame and isinstance(c[0], Paragraph)]
    assert len(bare) >= 5 * 5  # at least every cell of the five product lines
    assert not any(_is_frame_of_one_paragraph(f) for c in cells for f in c)


def test_a_cell_of_several_blocks_keeps_its_frame(monkeypatch):
    from tests.unit.test_pdf_render_once import _png

    seen = _tables_laid_out(monkeypatch)
    pdf.render_pdf(sample_document(2, "USD"), default_branding(), logo=_png((10, 20, 30), (300, 100)))
    frames = [f for c in _cells(seen) for f in c if type(f) is PmlKeepInFrame]
    # The seller (logo, name, number) and the parties keep theirs; an empty cell keeps its empty one.
    assert [len(f._content) for f in frames if f._content] and all(len(f._content) != 1 for f in frames)


def test_xhtml2pdf_cells_are_its_own_outside_a_layout_and_after_a_failed_one(monkeypatch):
    original = pdf._TD_END
    pdf.render_pdf(sample_document(2, "USD"), default_branding(), logo=None)
    assert xhtml2pdf_tables.pisaTagTD.end is original

    def broken(*_args, **_kwargs):
        raise RuntimeError("layout failed")

    monkeypatch.setattr(pdf.pisa, "CreatePDF", broken)
    with pytest.raises(RuntimeError):
        pdf.html_to_pdf("<p>x</p>")
    assert xhtml2pdf_tables.pisaTagTD.end is original


def test_a_note_longer_than_a_page_is_printed_whole(monkeypatch):
    from app.invoices import samples

    monkeypatch.setattr(samples, "NOTES", [" ".join(f"word{n:04d}" for n in range(1800))])
    doc = samples.sample_document(2, "USD", time_entries=1)
    data = pdf.render_pdf(doc, default_branding(), logo=None)
    text = _text(data)
    assert len(PdfReader(io.BytesIO(data)).pages) >= 3
    assert all(f"word{n:04d}" in text for n in range(1800))
