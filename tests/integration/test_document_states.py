"""Documents that tell the truth, on the simulator's own invoices, in the page and in the PDF: a credit memo reads
as a credit, a void invoice carries VOID and no payment block, a paid one PAID and its date, a partly paid one what
was paid so far; the public page's summary says what is due, by when, how late, with a Pay button only where a
balance is owed. No ConnectWise jargon, addresses in the country's order, dates in the workspace's locale."""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
from dataclasses import replace

import pytest
from pypdf import PdfReader
from sqlalchemy import update

from app.branding.model import BrandingError, branding_from_form, branding_to_form, default_branding
from app.invoices.html import render_document_html
from app.invoices.pdf import render_pdf
from app.invoices.samples import sample_document
from app.invoices.service import reconstruct
from app.invoices.templating import page_size_for
from app.invoices.view_model import document_state, summary
from app.security.limits import reset_limits
from app.tenancy import tenant_session
from app.tenants.models import TenantSettings
from tests.conftest import csrf_of
from tests.integration.invoice_helpers import (  # noqa: F401 (fixtures)
    connected_tenant,
    make_link,
    sim_knobs_at_defaults,
)
from tests.integration.test_invoice_rendering import html_text, make, pdf_pages

CREDIT_MEMO, PAID, PARTLY_PAID, GERMAN, JAPANESE, OPEN_US = 11, 15, 16, 9, 10, 3
PAY = "https://pay.example/?invoice={number}&amount={balance}&c={company}"
TODAY = dt.date(2026, 12, 1)


def void_invoice(sim) -> int:  # type: ignore[no-untyped-def]
    """The first invoice of the seed whose billing status is Void (the seed's body has a few)."""
    invoices = sim.state.data["invoices"]
    return next(i for i in invoices.ids() if invoices.get(i)["status"]["name"] == "Void")


@pytest.fixture(scope="module")
def docs(sim):  # type: ignore[no-untyped-def]
    sim.reset()
    with make(sim) as cw:
        ids = (CREDIT_MEMO, PAID, PARTLY_PAID, GERMAN, JAPANESE, OPEN_US, void_invoice(sim))
        return {i: reconstruct(cw, i) for i in ids} | {"void": reconstruct(cw, void_invoice(sim))}


def both(doc, branding=None) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The document's text as the web page shows it and as the PDF prints it."""
    branding = branding or replace(default_branding(), payment_instructions="Wire to IBAN DE00 1234")
    page = html_text(str(render_document_html(doc, branding, logo_url=None, pdf_url=None)))
    pdf = " ".join(pdf_pages(render_pdf(doc, branding, logo=None, page_size="A4")))
    return page, pdf


def test_a_credit_memo_is_titled_credit_memo_and_shows_a_credit_never_a_balance_due(docs):
    doc = docs[CREDIT_MEMO]
    assert doc.totals.total < 0  # the seed's credit memo: docks returned
    credit = f"Credit ${-doc.totals.total:,.2f}"
    for text in both(doc):
        assert "Credit memo" in text and credit in text
        for never in ("Balance due", "How to pay", "Due date", "Invoice number", "Credit Memo"):
            assert never not in text
    state = summary(doc, default_branding(), today=TODAY)
    assert (state["amount_label"], state["amount"], state["pay_url"]) == ("Credit", f"${-doc.totals.total:,.2f}", "")


def test_a_void_invoice_carries_void_and_no_payment_block(docs):
    doc = docs["void"]
    assert doc.totals.balance > 0  # ConnectWise keeps the figure: the document must not ask for it
    for text in both(doc):
        assert "VOID" in text and "Nothing is due" in text and "Amount due $0.00" in text
        assert "How to pay" not in text and "Balance due" not in text and "IBAN" not in text
    assert summary(doc, replace(default_branding(), pay_url=PAY), today=TODAY)["pay_url"] == ""


def test_a_paid_invoice_carries_paid_and_its_payment_date(docs):
    doc = docs[PAID]
    state = document_state(doc, TODAY)
    assert state.kind == "paid" and state.paid_on is not None
    paid_on = f"{state.paid_on:%b} {state.paid_on.day}, {state.paid_on.year}"  # en-US medium: "Jun 5, 2025"
    for text in both(doc):
        assert "PAID" in text and f"Paid on {paid_on}" in text and "Balance due $0.00" in text
        assert text.count("Paid on") == 1
        assert "How to pay" not in text
    head = summary(doc, replace(default_branding(), pay_url=PAY), today=TODAY)
    assert head["status"] == f"Paid on {paid_on}" and head["pay_url"] == "" and head["due_date"] == ""


def test_a_partly_paid_invoice_shows_paid_so_far_and_the_balance(docs):
    doc = docs[PARTLY_PAID]
    t = doc.totals
    assert 0 < t.payments < t.total
    for text in both(doc):
        assert f"Paid so far -${t.payments:,.2f}" in text or f"Paid so far (${t.payments:,.2f})" in text
        assert f"Balance due ${t.balance:,.2f}" in text and "How to pay" in text
        assert "PAID" not in text
    late = (TODAY - doc.due_date).days
    head = summary(doc, default_branding(), today=TODAY)
    assert head["status"] == f"Partly paid, {late} days overdue"
    assert head["amount"] == f"${t.balance:,.2f}"


def test_an_overdue_invoice_says_how_many_days_late_and_an_open_one_does_not(docs):
    doc = docs[OPEN_US]
    assert doc.due_date is not None
    late = summary(doc, default_branding(), today=doc.due_date + dt.timedelta(days=12))
    assert late["status"] == "12 days overdue" and late["state"].kind == "overdue"
    on_time = summary(doc, default_branding(), today=doc.due_date)
    assert on_time["status"] == "Open" and on_time["state"].kind == "open"
    one = summary(doc, default_branding(), today=doc.due_date + dt.timedelta(days=1))
    assert one["status"] == "1 day overdue"
    # The PDF lives on after today: it states the due date and the balance, never a count of days that would
    # go stale in an inbox.
    _page, pdf = both(doc)
    assert "overdue" not in pdf.lower() and f"Balance due ${doc.totals.balance:,.2f}" in pdf


def test_time_detail_of_a_short_invoice_stays_on_its_one_page(tmp_path):
    doc = sample_document(1, "USD", time_entries=3)
    doc = replace(doc, sections=tuple(s for s in doc.sections if s.key == "services"))
    pdf = tmp_path / "short.pdf"
    pdf.write_bytes(render_pdf(doc, default_branding(), logo=None, page_size="A4"))
    subprocess.run(["pdftoppm", "-r", "20", "-png", str(pdf), str(tmp_path / "page")], check=True)
    assert len(list(tmp_path.glob("page*.png"))) == 1
    text = pdf_pages(pdf.read_bytes())[0]
    assert "Time detail" in text and "Balance due" in text
    # A long one still flows over as many pages as it needs, the time detail after the totals.
    long_pages = pdf_pages(render_pdf(sample_document(30, "USD", time_entries=40), default_branding(), logo=None,
                                      page_size="A4"))
    assert len(long_pages) > 2 and "Time detail" not in long_pages[0]


def test_the_client_document_has_no_connectwise_jargon(docs):
    doc = docs[OPEN_US]
    assert doc.display_type == "Standard" and doc.bill_to.account_number
    for text in both(doc):
        assert "Standard" not in text and f"Account {doc.bill_to.account_number}" not in text
        assert f"Customer no. {doc.bill_to.account_number}" in text


def test_a_zero_tax_line_is_hidden(docs):
    doc = docs[OPEN_US]
    zero = replace(doc, tax_lines=(*doc.tax_lines, replace(doc.tax_lines[0], caption="County levy", amount=0)))
    for text in both(zero):
        assert "County levy" not in text and doc.tax_lines[0].caption in text


def test_addresses_read_in_their_country_order(docs):
    assert docs[GERMAN].bill_to.address[-2:] == ("10117 Berlin", "Germany")
    assert docs[GERMAN].bill_to.country == "DE"
    # Japan: street, then prefecture (the city, since the seed keeps the prefecture as a code), then postcode.
    assert docs[JAPANESE].bill_to.address == ("2-7-1 Marunouchi, Chiyoda-ku, Tokyo", "100-0005", "Japan")
    us = docs[OPEN_US].bill_to.address
    assert re.fullmatch(r"[A-Z][a-z]+( [A-Z][a-z]+)*, [A-Z]{2} \d{5}", us[-2]), us
    page, pdf = both(docs[GERMAN])
    assert "10117 Berlin" in page and "10117 Berlin" in pdf and "Berlin, BE" not in page


def test_dates_follow_the_workspace_locale(docs):
    doc = docs[GERMAN]
    german = replace(default_branding(), locale="de-DE")
    page, pdf = both(doc, german)
    day = f"{doc.date:%d.%m.%Y}"
    assert day in page and day in pdf
    us_page, _pdf = both(doc)
    assert f"{doc.date:%b} {doc.date.day}, {doc.date.year}" in us_page


def test_the_pay_link_is_checked_and_its_values_url_encoded(docs):
    form = branding_to_form(default_branding())
    for bad, says in (("http://pay.example/?i={number}", "https://"), ("https://pay.example/?i={total}", "{total}"),
                      ("javascript:alert(1)", "https://"), ("https://{company}.example/", "fixed host")):
        with pytest.raises(BrandingError) as refused:
            branding_from_form({**form, "pay_url": bad})
        assert refused.value.field == "pay_url" and says in refused.value.message
    branding = branding_from_form({**form, "pay_url": PAY})
    doc = replace(docs[PARTLY_PAID], number="INV 16/A&B")
    link = summary(doc, branding, company="", today=TODAY)["pay_url"]
    assert link.startswith("https://pay.example/?invoice=INV%2016%2FA%26B&amount=")
    assert f"&amount={doc.totals.balance:.2f}&" in link
    assert "c=" + doc.bill_to.name.replace(" ", "%20").replace(",", "%2C").replace("&", "%26") in link


@pytest.fixture
def _fresh_limits(app):  # type: ignore[no-untyped-def]
    with app.app_context():
        reset_limits()


def test_the_public_page_opens_with_a_summary_and_pay_button_saved_in_branding(  # type: ignore[no-untyped-def]
        app, client, make_tenant, sim, _fresh_limits):
    tenant = connected_tenant(client, make_tenant, sim)
    page = client.get("/settings/branding/").get_data(as_text=True)
    assert 'name="pay_url"' in page
    form = {**branding_to_form(default_branding()), "page_size": "A4", "csrf_token": csrf_of(client)}
    refused = client.post("/settings/branding/", data={**form, "pay_url": "http://pay.example/{number}"})
    assert refused.status_code == 422 and "https://" in refused.get_data(as_text=True)
    saved = client.post("/settings/branding/", data={**form, "pay_url": PAY})
    assert saved.status_code in (200, 302), saved.get_data(as_text=True)[:300]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.execute(update(TenantSettings).values(locale="en-GB"))

    owed = client.get(f"/i/{make_link(client, PARTLY_PAID)}").get_data(as_text=True)
    summary_html = owed.split('class="public-sheet"')[0]
    assert "Amount due" in summary_html and "days overdue" in summary_html and "Download PDF" in summary_html
    pay = re.search(r'href="(https://pay\.example/[^"]+)"', summary_html)
    assert pay and "invoice=" in pay.group(1) and ">Pay " in summary_html
    assert re.search(r"Due</dt><dd>\d{1,2} [A-Z][a-z]{2} \d{4}<", summary_html)  # en-GB: "25 Jun 2025"

    for invoice_id in (PAID, CREDIT_MEMO, void_invoice(sim)):
        text = client.get(f"/i/{make_link(client, invoice_id)}").get_data(as_text=True)
        assert "pay.example" not in text and "Download PDF" in text, invoice_id


def test_paper_size_follows_the_remit_to_country_unless_the_branding_chose(docs):
    us = docs[OPEN_US]
    assert us.remit_to is not None and us.remit_to.country == "US"
    german_seller = replace(us, remit_to=replace(us.remit_to, country="DE"))
    canadian_seller = replace(us, remit_to=replace(us.remit_to, country="CA"))
    assert [page_size_for(d, "auto") for d in (us, canadian_seller, german_seller)] == ["Letter", "Letter", "A4"]
    assert page_size_for(us, "A4") == "A4" and page_size_for(german_seller, "Letter") == "Letter"


def test_the_public_pdf_is_letter_for_a_us_seller_until_the_branding_says_a4(  # type: ignore[no-untyped-def]
        app, client, make_tenant, sim, _fresh_limits):
    connected_tenant(client, make_tenant, sim)
    token = make_link(client, OPEN_US)

    def paper() -> tuple[int, int]:
        response = client.get(f"/i/{token}/pdf")
        assert response.status_code == 200
        box = PdfReader(io.BytesIO(response.data)).pages[0].mediabox.upper_right
        return round(float(box[0])), round(float(box[1]))

    assert paper() == (612, 792)  # never saved: by the simulator's US remit-to address
    page = client.get("/settings/branding/").get_data(as_text=True)
    assert '<option value="auto" selected>By the remit-to country' in page
    form = {**branding_to_form(default_branding()), "page_size": "A4", "csrf_token": csrf_of(client)}
    assert client.post("/settings/branding/", data=form).status_code == 302
    assert paper() == (595, 842)
    assert client.post("/settings/branding/", data={**form, "page_size": "auto"}).status_code == 302
    assert paper() == (612, 792)
