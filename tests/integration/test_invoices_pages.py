"""The invoices page (ConnectWise paging, search, filters), the branded preview, and PDF downloads via a job."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader
from rq import SimpleWorker
from sqlalchemy import select, text

from app.invoices.links import link_token
from app.invoices.models import LinkView, PublicLink
from app.invoices.pdf_jobs import pdf_filename
from app.jobs.queue import get_queue
from app.services import services_of
from app.tenancy import tenant_session
from tests.conftest import sign_in
from tests.integration.conftest import SIM_INVOICES
from tests.integration.invoice_helpers import (  # noqa: F401 (fixtures)
    add_user,
    connected_tenant,
    htmx,
    rebuild_afterwards,
    sim_knobs_at_defaults,
)

ROW = re.compile(r'<a href="/invoices/(\d+)">([^<]+)</a>')


def _rows(html: str) -> list[tuple[int, str]]:
    return [(int(i), n) for i, n in ROW.findall(html)]


def test_the_list_pages_in_connectwise_newest_first_with_a_count(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    before = len(sim.requests)
    html = client.get("/invoices/").get_data(as_text=True)
    first = _rows(html)
    assert len(first) == 25
    assert f"{SIM_INVOICES} invoices" in html and "page 1 of 20" in html
    second = _rows(client.get("/invoices/?page=2").get_data(as_text=True))
    assert len(second) == 25 and not set(first) & set(second)
    calls = [r for r in sim.requests[before:] if "/finance/invoices" in r.path]
    assert any("pageSize=25" in r.query and "page=2" in r.query for r in calls)
    assert any(r.path.endswith("/finance/invoices/count") for r in calls)
    assert not any("pageSize=1000" in r.query for r in calls)  # never the whole list
    dates = [sim.state.data["invoices"].get(i)["date"] for i, _ in first]
    assert dates == sorted(dates, reverse=True)


def test_search_finds_an_invoice_by_number_or_company_name(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    rows = _rows(client.get("/invoices/?q=INV-10012").get_data(as_text=True))
    assert rows == [(12, "INV-10012")]
    company = sim.state.data["invoices"].get(3)["company"]["name"]
    html = client.get("/invoices/", query_string={"q": company.split()[0]}).get_data(as_text=True)
    found = _rows(html)
    assert (3, "INV-10003") in found or "page 1 of" in html
    assert all(company.split()[0].lower() in sim.state.data["invoices"].get(i)["company"]["name"].lower()
               for i, _ in found)


@pytest.mark.parametrize("q", ['" or 1=1 or "', "[2024-01-01]", "%*_", "\\", "INV' --", "a" * 500])
def test_search_text_never_breaks_the_connectwise_condition(app, client, make_tenant, sim, q):
    connected_tenant(client, make_tenant, sim)
    response = client.get("/invoices/", query_string={"q": q})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "could not be read" not in html


def test_filters_by_type_and_status(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    credit = _rows(client.get("/invoices/?type=CreditMemo").get_data(as_text=True))
    assert credit and all(sim.state.data["invoices"].get(i)["type"] == "CreditMemo" for i, _ in credit)
    html = client.get("/invoices/?status=6").get_data(as_text=True)  # Paid
    paid = _rows(html)
    assert paid and all(sim.state.data["invoices"].get(i)["status"]["id"] == 6 for i, _ in paid)
    assert '<option value="6" selected>Paid</option>' in html
    junk = client.get("/invoices/?type=Nope&status=x&page=-4")
    assert junk.status_code == 200 and len(_rows(junk.get_data(as_text=True))) == 25


def test_an_htmx_search_answers_the_list_partial(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    html = client.get("/invoices/?q=INV-10012", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in html and "INV-10012" in html and "Copy public link" in html


def test_without_a_connection_the_page_says_to_connect(app, client, make_tenant):
    sign_in(client, make_tenant())
    html = client.get("/invoices/").get_data(as_text=True)
    assert "Connect ConnectWise first" in html


def test_a_connectwise_outage_shows_a_message_not_an_error_page(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    sim.configure(error_rate=1.0, error_status=502)
    response = client.get("/invoices/?q=anything-new")
    assert response.status_code == 200 and "ConnectWise could not be read" in response.get_data(as_text=True)
    preview = client.get("/invoices/4")
    assert preview.status_code == 503 and "Traceback" not in preview.get_data(as_text=True)


def test_the_preview_renders_the_branded_invoice_inside_the_app_and_records_a_staff_view(app, client, make_tenant,
                                                                                        sim):
    t = connected_tenant(client, make_tenant, sim)
    response = client.get("/invoices/3")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "mainnav" in html and "bi-invoice" in html and "INV-10003" in html
    assert f"/branding/{t.id}/" in html and "css/invoice.css" in html
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        views = session.execute(select(LinkView)).scalars().all()
    assert [(v.kind, v.viewer, v.link_id, v.invoice_id) for v in views] == [("page", "staff", None, 3)]
    assert client.get("/invoices/99999").status_code == 404


def test_viewers_may_list_and_preview_but_not_see_link_buttons(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    other = app.test_client()
    sign_in(other, t, add_user(app, t, "viewer"))
    html = other.get("/invoices/").get_data(as_text=True)
    assert len(_rows(html)) == 25 and "Copy public link" not in html


def test_copy_public_link_makes_a_link_and_offers_it_for_the_clipboard(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    response = client.post("/invoices/3/links", data={"compact": "1"}, headers=htmx(client))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-copy="http' in html and "/i/" in html and "<html" not in html
    assert "onclick" not in html and "<script" not in html  # the copy is app.js's job (CSP: no inline script)


def _run_jobs(app, redis_conn) -> None:  # type: ignore[no-untyped-def]
    queue = get_queue(redis_conn, "pdf")
    with app.app_context():
        SimpleWorker([queue], connection=redis_conn, serializer=queue.serializer).work(burst=True)


def test_pdf_download_runs_as_a_job_with_progress_then_serves_the_file(app, client, make_tenant, sim, redis_conn):
    t = connected_tenant(client, make_tenant, sim)
    response = client.post("/invoices/3/pdf", data={"size": "Letter"}, headers=htmx(client))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'hx-trigger="every 1s"' in html and "Waiting for a worker" in html
    key = re.search(r"/invoices/pdf/([A-Za-z0-9_-]+)", html).group(1)
    job = get_queue(redis_conn, "pdf").jobs[0]
    assert list(job.args) == [str(t.id), 3, "Letter", key]  # ids only, tenant first
    _run_jobs(app, redis_conn)
    html = client.get(f"/invoices/pdf/{key}").get_data(as_text=True)
    assert "Ready" in html and "every 1s" not in html and "Invoice-INV-10003.pdf" in html
    download = client.get(f"/invoices/pdf/{key}/file")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.data.startswith(b"%PDF")
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert "Invoice-INV-10003.pdf" in download.headers["Content-Disposition"]
    assert redis_conn.ttl(f"bi:pdf:{t.id}:{key}:file") <= 600
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        views = session.execute(select(LinkView)).scalars().all()
    assert [(v.kind, v.viewer) for v in views] == [("pdf", "staff")]


def test_a_pdf_job_of_one_tenant_is_invisible_to_another(app, client, make_tenant, sim, redis_conn):
    connected_tenant(client, make_tenant, sim, "Tenant A")
    html = client.post("/invoices/3/pdf", headers=htmx(client)).get_data(as_text=True)
    key = re.search(r"/invoices/pdf/([A-Za-z0-9_-]+)", html).group(1)
    _run_jobs(app, redis_conn)
    other = app.test_client()
    connected_tenant(other, make_tenant, sim, "Tenant B")
    assert other.get(f"/invoices/pdf/{key}").status_code == 404
    assert other.get(f"/invoices/pdf/{key}/file").status_code == 404
    assert client.get(f"/invoices/pdf/{key}/file").status_code == 200


def test_a_failed_pdf_job_says_why(app, client, make_tenant, sim, redis_conn):
    connected_tenant(client, make_tenant, sim)
    html = client.post("/invoices/99999/pdf", headers=htmx(client)).get_data(as_text=True)
    key = re.search(r"/invoices/pdf/([A-Za-z0-9_-]+)", html).group(1)
    _run_jobs(app, redis_conn)
    html = client.get(f"/invoices/pdf/{key}").get_data(as_text=True)
    assert "Failed" in html and "no invoice 99999" in html
    assert client.get(f"/invoices/pdf/{key}/file").status_code == 404
    assert client.post("/invoices/3/pdf", data={"size": "A3"}, headers=htmx(client)).status_code == 400


@pytest.mark.parametrize("number,expected", [
    ("INV-10003", "Invoice-INV-10003.pdf"),
    ("../../etc/passwd", "Invoice-etc-passwd.pdf"),
    ('a"b\r\nSet-Cookie: x', "Invoice-a-b-Set-Cookie-x.pdf"),
    ("Þekking/2025 #7", "Invoice-ekking-2025-7.pdf"),
    ("", "Invoice-42.pdf"),
    ("///", "Invoice-42.pdf"),
])
def test_pdf_file_names_come_from_the_invoice_number_made_safe(number, expected):
    assert pdf_filename(number, 42) == expected


@pytest.mark.parametrize("kind", ["Standard", "Project", "ProjectPhase", "SalesOrder", "FixedFee"])
def test_the_display_types_project_phase_sales_order_and_fixed_fee_can_be_filtered(app, client, make_tenant, sim,
                                                                                    kind):
    connected_tenant(client, make_tenant, sim)
    html = client.get(f"/invoices/?type={kind}").get_data(as_text=True)
    rows = _rows(html)
    assert rows, kind
    assert f'<option value="{kind}" selected>' in html
    invoices = sim.state.data["invoices"]
    fixed_projects = {p["id"] for p in sim.state.data["projects"].records.values() if p["billingMethod"] == "FixedFee"}
    for invoice_id, _ in rows:
        inv = invoices.get(invoice_id)
        apply_to = inv.get("applyToType")
        if kind == "Standard":
            assert inv["type"] == "Standard" and apply_to not in ("Project", "ProjectPhase", "SalesOrder")
        elif kind == "FixedFee":
            assert (inv.get("project") or {}).get("id") in fixed_projects
        else:
            assert apply_to == kind


# -- the invoice's one stable public link -------------------------------------------------------------------------

LINK_IN_FIELD = re.compile(r'value="(http[^"]+/i/[A-Za-z0-9_-]+)"')


def _copy(client, invoice_id: int) -> str:  # type: ignore[no-untyped-def]
    response = client.post(f"/invoices/{invoice_id}/links", data={"compact": "1"}, headers=htmx(client))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    html = response.get_data(as_text=True)
    assert "data-focus-after-swap" in html  # focus lands on the new link field after the swap
    return LINK_IN_FIELD.search(html).group(1)


def test_copying_a_public_link_twice_gives_the_same_link(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    first, second = _copy(client, 3), _copy(client, 3)
    assert first == second
    assert _copy(client, 4) != first  # one link per invoice, not one for all
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        links = session.execute(select(PublicLink).where(PublicLink.invoice_id == 3)).scalars().all()
    assert len(links) == 1
    assert app.test_client().get(first[first.index("/i/"):]).status_code == 200


def test_after_revoking_the_next_copy_makes_a_fresh_link(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    first = _copy(client, 3)
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        link_id = session.execute(select(PublicLink.id)).scalar_one()
    assert client.post(f"/invoices/3/links/{link_id}/revoke", headers=htmx(client)).status_code == 200
    fresh = _copy(client, 3)
    assert fresh != first and _copy(client, 3) == fresh
    visitor = app.test_client()
    assert visitor.get(first[first.index("/i/"):]).status_code == 410
    assert visitor.get(fresh[fresh.index("/i/"):]).status_code == 200


def test_the_stored_link_token_is_encrypted_never_plain(app, client, make_tenant, sim, owner_engine):
    t = connected_tenant(client, make_tenant, sim)
    url = _copy(client, 3)
    token = url.rsplit("/", 1)[1]
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        link = session.execute(select(PublicLink)).scalar_one()
        assert link.token_enc is not None and token.encode() not in bytes(link.token_enc)
        assert link_token(services_of(app).keyring, link) == token
    with owner_engine.connect() as conn:
        dump = "\n".join(conn.execute(text("select row_to_json(t)::text from public_links t")).scalars())
    assert token not in dump


def test_the_links_card_copies_the_same_stable_link_and_a_listed_link_again(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    page = client.get("/invoices/3").get_data(as_text=True)
    assert "Copy public link" in page and "/i/" not in page  # no token in the page until someone asks for it
    url = _copy(client, 3)
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        link_id = session.execute(select(PublicLink.id)).scalar_one()
    again = client.post(f"/invoices/3/links/{link_id}/copy", headers=htmx(client))
    assert again.status_code == 200 and url in again.get_data(as_text=True)
    assert client.post(f"/invoices/4/links/{link_id}/copy", headers=htmx(client)).status_code == 404
    assert client.post("/invoices/3/links/not-a-uuid/copy", headers=htmx(client)).status_code == 404
    # The card's own button answers the whole card: the link shown whole (it wraps) and listed, the same link.
    card = client.post("/invoices/3/links", data={"compact": "1", "place": "card"}, headers=htmx(client))
    html = card.get_data(as_text=True)
    assert card.status_code == 200 and 'id="public-links"' in html and "No links yet" not in html
    assert re.search(r"<textarea[^>]*data-focus-after-swap[^>]*>" + re.escape(url) + "</textarea>", html)
    assert html.count("Active") == 1


# -- badges, statuses, sorting, page total --------------------------------------------------------------------------

BADGE = re.compile(r'<a href="/invoices/(\d+)">[^<]+</a>.*?<span class="badge inv-state inv-(\w+)">([^<]+)</span>', re.S)
HEAD_BADGE = re.compile(r'<span class="badge inv-state inv-(\w+)">([^<]+)</span>')


def _expected_state(inv: dict, today) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(badge colour, label) as the invoice's document reads it: paid or credited against it, balance, due date."""
    settled = (inv.get("payments") or 0) + (inv.get("credits") or 0)
    late = bool(inv.get("dueDate")) and inv["dueDate"][:10] < today.isoformat()
    if inv["type"] == "CreditMemo":
        return "credit", "Credit memo"
    if "void" in inv["status"]["name"].lower():
        return "void", "Void"
    if inv["balance"] <= 0:
        return "paid", "Paid" if settled > 0 else "Nothing due"  # a $0 invoice was never paid: nothing was due
    if settled > 0:
        return "overdue" if late else "open", "Partly paid"
    return ("overdue", "Overdue") if late else ("open", "Open")


def test_status_badges_say_what_each_invoice_means_for_money(app, client, make_tenant, fresh_sim, request):
    import datetime as dt

    sim = fresh_sim
    rebuild_afterwards(request, sim)
    connected_tenant(client, make_tenant, sim)
    invoices, today = sim.state.data["invoices"], dt.date.today()
    # The simulator's invoices are all from before its fixed "today": give one owed invoice a due date ahead.
    owed = next(i for i in invoices.ids() if invoices.get(i)["balance"] > 0 and invoices.get(i)["type"] == "Standard"
                and "void" not in invoices.get(i)["status"]["name"].lower())
    invoices.set_fields(owed, {"dueDate": f"{today + dt.timedelta(days=10)}T00:00:00Z"})
    seen: dict[str, int] = {}
    for url in ("/invoices/", "/invoices/?type=CreditMemo", "/invoices/?status=8", "/invoices/?status=6",
                "/invoices/?sort=due&dir=desc"):
        for invoice_id, state, label in BADGE.findall(client.get(url).get_data(as_text=True)):
            inv = invoices.get(int(invoice_id))
            assert (state, label) == _expected_state(inv, today), (invoice_id, inv["status"], inv["balance"])
            seen[state] = seen.get(state, 0) + 1
    assert set(seen) == {"open", "overdue", "paid", "void", "credit"}, seen
    css = client.get("/static/css/lists.css").get_data(as_text=True)
    assert all(f".badge.inv-{state}" in css for state in seen)  # each meaning has its own colour


def test_the_status_filter_offers_every_connectwise_status_even_inactive_ones(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    html = client.get("/invoices/?q=INV-10012").get_data(as_text=True)  # one row: its status alone would not do
    offered = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', html)
    statuses = sim.state.data["billingStatuses"].records.values()
    assert {int(i) for i, _ in offered} == {s["id"] for s in statuses}
    assert ("8", "Void (inactive)") in offered
    void = _rows(client.get("/invoices/?status=8").get_data(as_text=True))
    assert void and all(sim.state.data["invoices"].get(i)["status"]["id"] == 8 for i, _ in void)


@pytest.mark.parametrize("column,field,direction", [
    ("number", "invoiceNumber", "asc"), ("company", "company/name", "desc"), ("date", "date", "asc"),
    ("due", "dueDate", "asc"), ("total", "total", "desc"), ("balance", "balance", "asc"),
])
def test_columns_sort_in_connectwise(app, client, make_tenant, sim, column, field, direction):
    connected_tenant(client, make_tenant, sim)
    before = len(sim.requests)
    html = client.get(f"/invoices/?sort={column}&dir={direction}").get_data(as_text=True)
    rows = _rows(html)
    assert len(rows) == 25
    calls = [r for r in sim.requests[before:] if r.path.endswith("/finance/invoices")]
    assert any(f"orderBy={field.replace('/', '%2F')}+{direction}" in r.query for r in calls)
    invoices = sim.state.data["invoices"]

    def key(invoice_id: int):  # type: ignore[no-untyped-def]
        inv = invoices.get(invoice_id)
        return inv["company"]["name"] if field == "company/name" else inv[field]

    values = [key(i) for i, _ in rows]
    assert values == sorted(values, reverse=direction == "desc")
    assert f'aria-sort="{"ascending" if direction == "asc" else "descending"}"' in html
    # The header offers the other direction next; the pager keeps the order.
    flipped = "desc" if direction == "asc" else "asc"
    header = re.search(r'<th scope="col" aria-sort="(?:ascending|descending)"[^>]*><a[^>]*href="([^"]*)"', html).group(1)
    assert header == ("/invoices/" if (column, flipped) == ("date", "desc") else
                      f"/invoices/?sort={column}&amp;dir={flipped}")
    assert re.search(rf'id="page-older"[^>]*href="/invoices/\?sort={column}&amp;dir={direction}&amp;page=2"', html)


@pytest.mark.parametrize("args", ["sort=id;drop", "sort=_info/lastUpdated", "sort=total&dir=sideways",
                                  "sort=" + "x" * 500, "dir=asc"])
def test_a_bad_sort_falls_back_and_never_fails(app, client, make_tenant, sim, args):
    connected_tenant(client, make_tenant, sim)
    before = len(sim.requests)
    response = client.get(f"/invoices/?{args}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert len(_rows(html)) == 25 and "could not be read" not in html
    calls = [r for r in sim.requests[before:] if r.path.endswith("/finance/invoices")]
    order = [r.query for r in calls if "orderBy=" in r.query]
    assert order and all("orderBy=date+desc" in q or "orderBy=total+desc" in q for q in order)


def test_the_page_total_adds_up_the_rows_on_the_page_per_currency(app, client, make_tenant, sim):
    from decimal import Decimal

    connected_tenant(client, make_tenant, sim)
    html = client.get("/invoices/").get_data(as_text=True)
    invoices = sim.state.data["invoices"]
    rows = [invoices.get(i) for i, _ in _rows(html)]
    foot = html[html.index("<tfoot>"):html.index("</tfoot>")]
    assert "Page total" in foot
    cells = re.findall(r'data-label="(Total|Balance)">([^<]+)<', foot)
    currencies = list(dict.fromkeys(r["currency"]["currencyCode"] for r in rows))
    assert len(cells) == 2 * len(currencies)  # one line per currency, in the order they appear
    usd = [r for r in rows if r["currency"]["currencyCode"] == "USD"]
    line = dict(cells[2 * currencies.index("USD"):2 * currencies.index("USD") + 2])

    def dollars(text: str) -> Decimal:
        negative = text.startswith(("-", "("))
        value = Decimal(text.strip("-()").replace("$", "").replace(",", ""))
        return -value if negative else value

    assert dollars(line["Total"]) == sum(Decimal(str(r["total"])) for r in usd).quantize(Decimal("0.01"))
    assert dollars(line["Balance"]) == sum(Decimal(str(r["balance"])) for r in usd).quantize(Decimal("0.01"))


def test_paging_puts_focus_on_the_first_new_row_but_a_search_does_not(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    paged = client.get("/invoices/?page=2", headers={"HX-Request": "true", "HX-Trigger": "page-older"})
    first_row = re.search(r"<tbody>\s*<tr([^>]*)>", paged.get_data(as_text=True)).group(1)
    assert "data-focus-after-swap" in first_row and 'tabindex="-1"' in first_row
    typed = client.get("/invoices/?q=INV", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "data-focus-after-swap" not in typed  # focus stays in the search box while typing


def test_pdf_progress_has_one_slot_that_a_second_click_replaces(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    page = client.get("/invoices/").get_data(as_text=True)
    assert page.count('id="pdf-jobs"') == 1
    pdf_buttons = re.findall(r'<button[^>]*hx-post="/invoices/\d+/pdf"[^>]*>', page)
    assert pdf_buttons and all('hx-target="#pdf-jobs"' in b and 'hx-swap="innerHTML"' in b for b in pdf_buttons)
    preview = client.get("/invoices/3").get_data(as_text=True)
    form = re.search(r'<form[^>]*hx-post="/invoices/3/pdf"[^>]*>', preview).group(0)
    assert preview.count('id="pdf-jobs"') == 1 and 'hx-swap="innerHTML"' in form


def test_the_preview_head_says_what_the_invoice_is_with_the_lists_colours(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    credit = _rows(client.get("/invoices/?type=CreditMemo").get_data(as_text=True))[0][0]
    void = _rows(client.get("/invoices/?status=8").get_data(as_text=True))[0][0]
    assert '<span class="badge inv-state inv-credit">Credit memo</span>' in client.get(f"/invoices/{credit}").get_data(
        as_text=True)
    assert '<span class="badge inv-state inv-void">Void</span>' in client.get(f"/invoices/{void}").get_data(as_text=True)


def test_the_list_and_the_preview_say_the_same_of_each_kind_of_invoice(app, client, make_tenant, fresh_sim, request):
    import datetime as dt

    sim = fresh_sim
    rebuild_afterwards(request, sim)
    connected_tenant(client, make_tenant, sim)
    invoices, today = sim.state.data["invoices"], dt.date.today()
    invoices.set_fields(2, {"dueDate": f"{today + dt.timedelta(days=10)}T00:00:00Z"})  # owed, due ahead
    invoices.set_fields(17, {"dueDate": f"{today + dt.timedelta(days=10)}T00:00:00Z"})  # partly paid, due ahead
    # The simulator's own examples: credit memo, paid, partly paid (late and not), void, a $0 one, overdue, open.
    examples = {11: ("credit", "Credit memo"), 15: ("paid", "Paid"), 16: ("overdue", "Partly paid"),
                17: ("open", "Partly paid"), 121: ("void", "Void"), 27: ("paid", "Nothing due"),
                148: ("paid", "Nothing due"), 3: ("overdue", "Overdue"), 2: ("open", "Open")}
    for invoice_id, expected in examples.items():
        inv = invoices.get(invoice_id)
        assert _expected_state(inv, today) == expected, (invoice_id, inv)  # the example is what it is said to be
        listed = {int(i): (badge, label) for i, badge, label in BADGE.findall(
            client.get("/invoices/", query_string={"q": inv["invoiceNumber"]}).get_data(as_text=True))}
        preview = client.get(f"/invoices/{invoice_id}").get_data(as_text=True)
        head = preview[preview.index("<h1>"):preview.index("</h1>") + 400]
        assert listed.get(invoice_id) == expected, (invoice_id, listed)
        assert HEAD_BADGE.search(head).groups() == expected, (invoice_id, head)


def test_a_staff_pdf_without_a_chosen_size_takes_the_remit_to_countrys_paper(app, client, make_tenant, sim,
                                                                              redis_conn):
    connected_tenant(client, make_tenant, sim)
    page = client.get("/invoices/3").get_data(as_text=True)
    assert '<option value="Letter" selected>' in page  # the simulator's seller is in the US; branding never saved
    html = client.post("/invoices/3/pdf", headers=htmx(client)).get_data(as_text=True)
    key = re.search(r"/invoices/pdf/([A-Za-z0-9_-]+)", html).group(1)
    _run_jobs(app, redis_conn)
    box = PdfReader(io.BytesIO(client.get(f"/invoices/pdf/{key}/file").data)).pages[0].mediabox.upper_right
    assert (round(float(box[0])), round(float(box[1]))) == (612, 792)
