"""The review inbox (/review/): what each tab holds and counts (one query), search with "#" stripped, each filter,
"only mine", unread rows, paging and server-side sorting in a stable order, the rows' content (glyph, counts,
amount in the invoice's own currency format, flag badge, avatars), empty states, the htmx list against the full
page, tenant isolation, and no ConnectWise request from the inbox."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, select

from app.review import inbox
from app.review.models import ReadMark, Reviewer, ReviewInvoice, Snapshot, Sweep
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from tests.conftest import sign_in
from tests.integration.invoice_helpers import add_user, connected_tenant, sim_knobs_at_defaults  # noqa: F401
from tests.integration.test_review_sweep import FAST

NOW = dt.datetime.now(dt.UTC)
HX = {"HX-Request": "true"}
NUMBER = re.compile(r'class="inv-number">([^<]+)<')


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Inbox Co")


def swept(app, tenant) -> None:  # type: ignore[no-untyped-def]
    """A finished sweep record, so the inbox is past its "run the first sweep" state."""
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.add(Sweep(id=uuid.uuid4(), tenant_id=tenant.id, kind="full", outcome="ok", finished_at=NOW))


def add_rows(app, tenant, *specs: dict[str, Any]) -> list[int]:  # type: ignore[no-untyped-def]
    """Inbox rows as the sweep leaves them; each spec overrides the defaults. Returns the invoice ids."""
    ids = []
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        start = (session.execute(select(ReviewInvoice.invoice_id).order_by(ReviewInvoice.invoice_id.desc())
                                 .limit(1)).scalar_one_or_none() or 1000)
        for n, spec in enumerate(specs, start=start + 1):
            values: dict[str, Any] = {
                "invoice_id": n, "invoice_number": f"INV-{n}", "company_name": "Harbour Dental", "display_type": "Standard",
                "total": Decimal("100.00"), "currency": "USD", "status_id": 1, "status_name": "Draft",
                "invoice_date": dt.date(NOW.year, 1, 1) + dt.timedelta(days=n % 300), "is_open": True,
                "state": "needs_review", "changed_at": NOW - dt.timedelta(days=1), **spec}
            session.add(ReviewInvoice(id=uuid.uuid4(), tenant_id=tenant.id, **values))
            ids.append(values["invoice_id"])
    return ids


def numbers(html: str) -> list[str]:
    return NUMBER.findall(html)


def listed(client, **args: str) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.get("/review/", query_string=args, headers=HX)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return numbers(response.get_data(as_text=True))


def tab_counts(html: str) -> dict[str, int]:
    found = re.findall(r'id="tab-(\w+)"[^>]*>[^<]*<span class="count">([\d,]+)</span>', html)
    return {tab: int(count.replace(",", "")) for tab, count in found}


def test_each_tab_holds_what_its_definition_says_and_counts_it(app, client, tenant):
    swept(app, tenant)
    old = NOW - dt.timedelta(days=inbox.CLOSED_RECENT_DAYS + 10)
    add_rows(app, tenant,
             {"invoice_number": "NEW-1"},
             {"invoice_number": "NEW-FLAGGED", "blocking_flags": 2, "open_flags": 3, "worst_flag": 3},
             {"invoice_number": "NEW-INFO-ONLY", "open_flags": 1, "worst_flag": 1},
             {"invoice_number": "APPROVED-1", "state": "approved", "state_at": NOW},
             {"invoice_number": "APPROVED-FLAGGED", "state": "approved", "state_at": NOW, "blocking_flags": 1,
              "open_flags": 1, "worst_flag": 2},
             {"invoice_number": "REJECTED-1", "state": "rejected", "state_at": NOW},
             {"invoice_number": "CLOSED-HERE", "state": "closed", "state_at": NOW},
             {"invoice_number": "LEFT-CW", "is_open": False, "left_open_at": NOW - dt.timedelta(days=2)},
             {"invoice_number": "LEFT-LONG-AGO", "is_open": False, "left_open_at": old, "changed_at": old})
    assert sorted(listed(client)) == ["NEW-1", "NEW-FLAGGED", "NEW-INFO-ONLY"]  # Needs review is the default
    assert sorted(listed(client, tab="flagged")) == ["APPROVED-FLAGGED", "NEW-FLAGGED"]
    assert sorted(listed(client, tab="approved")) == ["APPROVED-1", "APPROVED-FLAGGED"]
    assert listed(client, tab="rejected") == ["REJECTED-1"]
    assert sorted(listed(client, tab="closed")) == ["CLOSED-HERE", "LEFT-CW"]
    assert sorted(listed(client, tab="all")) == sorted(["NEW-1", "NEW-FLAGGED", "NEW-INFO-ONLY", "APPROVED-1",
                                                        "APPROVED-FLAGGED", "REJECTED-1", "CLOSED-HERE"])
    html = client.get("/review/").get_data(as_text=True)
    assert tab_counts(html) == {"needs_review": 3, "flagged": 2, "approved": 2, "rejected": 1, "closed": 2, "all": 7}
    assert 'id="tab-needs_review" href="/review/" hx-get="/review/" hx-target="#inbox"' in html
    assert 'class="active" aria-current="page">Needs review' in html


def test_the_six_tab_counts_cost_one_query(app, tenant):
    add_rows(app, tenant, {}, {"state": "approved"}, {"blocking_flags": 1})
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = app.extensions["engine"]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.connection()  # the tenant is set before counting starts
        event.listen(engine, "before_cursor_execute", seen)
        try:
            counted = inbox.counts(session, inbox.InboxQuery(search="inv"), tenant.owner_id, NOW)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert counted == {"needs_review": 2, "flagged": 1, "approved": 1, "rejected": 0, "closed": 0, "all": 3}
    assert len(statements) == 1 and statements[0].count("FILTER (WHERE") == 6


def test_search_matches_number_or_company_in_any_case_with_leading_hashes_stripped(app, client, tenant):
    swept(app, tenant)
    add_rows(app, tenant, {"invoice_number": "INV-7731", "company_name": "Northwind Traders"},
             {"invoice_number": "INV-8000", "company_name": "Contoso Dental"},
             {"invoice_number": "CM-100_5", "company_name": "50% Off Ltd"})
    assert listed(client, q="#INV-7731") == ["INV-7731"]
    assert listed(client, q="##inv-77") == ["INV-7731"]
    assert listed(client, q="inv-7731") == ["INV-7731"]
    assert listed(client, q="contoso") == ["INV-8000"]
    assert listed(client, q="NORTHWIND trad") == ["INV-7731"]
    # LIKE's wildcards are searched for as themselves.
    assert listed(client, q="%") == ["CM-100_5"]
    assert listed(client, q="100_5") == ["CM-100_5"] and listed(client, q="0_") == ["CM-100_5"]
    assert listed(client, q="nothing like it") == []
    html = client.get("/review/", query_string={"q": "#contoso"}).get_data(as_text=True)
    assert 'value="contoso"' in html and tab_counts(html)["needs_review"] == 1


def test_each_filter_narrows_the_list_and_the_counts(app, client, tenant):
    swept(app, tenant)
    colleague = add_user(app, tenant, "reviewer")
    ids = add_rows(app, tenant, {"invoice_number": "AG-1", "display_type": "Agreement"},
                   {"invoice_number": "ST-1", "status_id": 7, "status_name": "Ready to Send"},
                   {"invoice_number": "ST-2"}, {"invoice_number": "ST-3"})
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.add(Reviewer(id=uuid.uuid4(), tenant_id=tenant.id, invoice_id=ids[2], user_id=colleague,
                             name="Casey Colleague", source="manual"))
        session.add(Reviewer(id=uuid.uuid4(), tenant_id=tenant.id, invoice_id=ids[3], member_id=42,
                             name="Morgan Member", source="routing"))
    assert listed(client, type="Agreement") == ["AG-1"]
    assert listed(client, status="7") == ["ST-1"]
    assert listed(client, reviewer=f"u-{colleague}") == ["ST-2"]
    assert listed(client, reviewer="m-42") == ["ST-3"]
    assert tab_counts(client.get("/review/?type=Agreement").get_data(as_text=True))["all"] == 1
    page = client.get("/review/").get_data(as_text=True)
    assert '<option value="7" >Ready to Send</option>' in page
    assert f'<option value="u-{colleague}" >Casey Colleague</option>' in page and '"m-42" >Morgan Member' in page
    # A value that is not a choice is no filter at all, never an error.
    for junk in ({"type": "Bogus"}, {"status": "x1"}, {"reviewer": "u-not-a-uuid"}, {"reviewer": "m-"},
                 {"tab": "<script>"}, {"sort": "drop"}, {"dir": "sideways"}, {"page": "-3"}, {"page": "9" * 30}):
        assert sorted(listed(client, **junk)) == ["AG-1", "ST-1", "ST-2", "ST-3"], junk


def test_only_mine_lists_the_invoices_i_am_a_reviewer_of(app, client, tenant):
    swept(app, tenant)
    ids = add_rows(app, tenant, {"invoice_number": "MINE-1"}, {"invoice_number": "THEIRS-1"}, {})
    someone = add_user(app, tenant, "billing_manager")
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.add(Reviewer(id=uuid.uuid4(), tenant_id=tenant.id, invoice_id=ids[0], user_id=tenant.owner_id,
                             name="Olive Owner", source="manual"))
        session.add(Reviewer(id=uuid.uuid4(), tenant_id=tenant.id, invoice_id=ids[1], user_id=someone,
                             name="Sam Someone", source="manual"))
    assert listed(client, mine="1") == ["MINE-1"]
    html = client.get("/review/?mine=1").get_data(as_text=True)
    assert tab_counts(html)["all"] == 1 and 'name="mine" value="1" checked' in html
    sign_in(client, tenant, someone)
    assert listed(client, mine="1") == ["THEIRS-1"]


def test_unread_rows_are_bold_with_a_dot_until_i_open_them_and_again_once_they_change(app, client, tenant):
    swept(app, tenant)
    ids = add_rows(app, tenant, {"invoice_number": "READ-1"}, {"invoice_number": "NEVER-OPENED"},
                   {"invoice_number": "CHANGED-SINCE"})
    other = add_user(app, tenant, "reviewer")
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        for invoice_id, user_id, at in ((ids[0], tenant.owner_id, NOW), (ids[2], tenant.owner_id,
                                                                          NOW - dt.timedelta(days=3)),
                                        (ids[1], other, NOW)):
            session.add(ReadMark(id=uuid.uuid4(), tenant_id=tenant.id, invoice_id=invoice_id, user_id=user_id,
                                 read_at=at))
    html = client.get("/review/", headers=HX).get_data(as_text=True)
    unread_rows = re.findall(r'<li class="inbox-row unread">.*?class="inv-number">([^<]+)<', html, re.S)
    assert sorted(unread_rows) == ["CHANGED-SINCE", "NEVER-OPENED"]
    assert html.count('class="unread-dot"') == 2 and html.count('<li class="inbox-row">') == 1
    assert sorted(listed(client, unread="1")) == ["CHANGED-SINCE", "NEVER-OPENED"]
    sign_in(client, tenant, other)  # read marks are each person's own
    assert sorted(listed(client, unread="1")) == ["CHANGED-SINCE", "READ-1"]


def test_pages_of_fifty_sorted_on_the_server_in_a_stable_order(app, client, tenant):
    swept(app, tenant)
    specs = [{"invoice_number": f"P-{n:03d}", "company_name": f"Company {n % 7}", "total": Decimal(n % 5),
              "worst_flag": n % 4, "open_flags": n % 4} for n in range(120)]
    add_rows(app, tenant, *specs)
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        rows = session.execute(select(ReviewInvoice)).scalars().all()
        by_number = {r.invoice_number: r for r in rows}
    for sort in inbox.SORTS:
        for direction in ("asc", "desc"):
            pages = [listed(client, sort=sort, dir=direction, page=str(p)) for p in (1, 2, 3)]
            assert [len(p) for p in pages] == [50, 50, 20], (sort, direction)
            seen = [n for p in pages for n in p]
            assert sorted(seen) == sorted(by_number), "every row once across the pages (ties never reshuffle)"
            key = {"date": lambda r: r.invoice_date, "number": lambda r: r.invoice_number.lower(),
                   "company": lambda r: r.company_name.lower(), "amount": lambda r: r.total,
                   "flag": lambda r: r.worst_flag}[sort]
            values = [key(by_number[n]) for n in seen]
            assert values == sorted(values, reverse=direction == "desc"), (sort, direction)
            assert seen == [n for p in pages for n in p], "the same order twice"
    html = client.get("/review/?page=2").get_data(as_text=True)
    assert "page 2 of 3" in html and 'id="page-prev"' in html and 'href="/review/?page=3"' in html
    assert len(listed(client, page="99")) == 20, "past the last page shows the last one"
    # A click on the sorted column flips its direction; another column starts in its own first direction.
    assert 'id="sort-amount" class="c-amount sorted" href="/review/?sort=amount&amp;dir=asc"' in client.get(
        "/review/?sort=amount").get_data(as_text=True)


def test_rows_show_type_glyph_counts_amount_status_flag_badge_and_reviewer_avatars(app, client, tenant):
    swept(app, tenant)
    ids = add_rows(app, tenant,
                   {"invoice_number": "ROW-OK", "display_type": "Agreement", "time_count": 12, "product_count": 3,
                    "expense_count": 1, "total": Decimal("1234.5"), "status_name": "Draft <b>"},
                   {"invoice_number": "ROW-ERR", "worst_flag": 3, "open_flags": 4, "blocking_flags": 2},
                   {"invoice_number": "ROW-WARN", "worst_flag": 2, "open_flags": 1, "blocking_flags": 1},
                   {"invoice_number": "ROW-INFO", "worst_flag": 1, "open_flags": 2},
                   {"invoice_number": "ROW-CAD", "currency": "CAD", "total": Decimal("-20")})
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        session.add(Reviewer(id=uuid.uuid4(), tenant_id=tenant.id, invoice_id=ids[0], member_id=7,
                             name="Jordan Morales", state="approved", state_at=NOW, source="routing"))
    html = client.get("/review/", headers=HX).get_data(as_text=True)
    row = {n: html[html.index(f">{n}<"):] for n in ("ROW-OK", "ROW-ERR", "ROW-WARN", "ROW-INFO", "ROW-CAD")}
    for n in row:  # each row's own markup, up to the next row
        row[n] = row[n][:row[n].find("</li>")]
    ok = row["ROW-OK"]
    assert 'class="type-glyph t-ag" role="img" aria-label="Agreement" title="Agreement">AG<' in ok
    assert "12<span class=\"sr-only\"> time entries,</span>" in ok and "3<span class=\"sr-only\"> products,</span>" in ok
    assert "1<span class=\"sr-only\"> expenses</span>" in ok
    assert "$1,234.50" in ok and "Draft &lt;b&gt;" in ok
    assert 'class="flag-badge none"' in ok and "No open flags" in ok
    assert 'class="rv-avatar st-approved"' in ok and ">JM<" in ok
    assert f'href="/review/{ids[0]}"' in html
    assert 'class="flag-badge error"' in row["ROW-ERR"] and "4 open flags, the worst an error" in row["ROW-ERR"]
    assert 'class="flag-badge amber"' in row["ROW-WARN"] and "1 open flag, the worst a warning" in row["ROW-WARN"]
    assert 'class="flag-badge amber"' in row["ROW-INFO"] and "the worst info" in row["ROW-INFO"]
    # No snapshot holds this currency's format: two decimals and the code.
    assert "-20.00\u00a0CAD" in row["ROW-CAD"]


def test_amounts_follow_each_invoices_connectwise_currency_format(app, client, tenant, redis_conn):
    assert run_sweep(services_of(app), str(tenant.id), kind="full", client_options=FAST).outcome == "ok"
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        picked = {}
        for row in session.execute(select(ReviewInvoice).where(ReviewInvoice.is_open)).scalars():
            picked.setdefault(row.currency, row)
        totals = {code: (row.invoice_number, row.total) for code, row in picked.items()}
        assert session.execute(select(Snapshot).where(Snapshot.currency == "EUR")).first()
    assert {"USD", "EUR", "JPY"} <= set(totals)
    from app.connectwise.records import Currency
    from app.invoices.document import format_money
    # The simulator's currencies, as its seed defines them (cwsim/seed/names.py): EUR "1.234,56 €", JPY "¥1,235".
    formats = {"USD": Currency("USD", "$", 2, ".", ",", True), "EUR": Currency("EUR", "€", 2, ",", ".", False),
               "JPY": Currency("JPY", "¥", 0, ".", ",", True)}
    for code, (number, total) in totals.items():
        if code not in formats:
            continue
        html = client.get("/review/", query_string={"q": number, "tab": "all"}, headers=HX).get_data(as_text=True)
        assert format_money(total, formats[code]) in html, (code, number)
    assert redis_conn.get(f"bi:review:currency:{tenant.id}:EUR"), "the format is cached for the next page"


def test_before_any_sweep_the_list_offers_the_first_sweep_and_an_empty_tab_says_all_caught_up(app, client, tenant):
    html = client.get("/review/").get_data(as_text=True)
    assert "No invoices to review yet" in html and "Run the first sweep" in html
    assert html.count('id="sweep-panel"') == 1
    swept(app, tenant)
    html = client.get("/review/").get_data(as_text=True)
    assert "Nothing needs review: all caught up" in html and "Run the first sweep" not in html
    add_rows(app, tenant, {"state": "approved"})
    assert "Nothing needs review: all caught up" in client.get("/review/").get_data(as_text=True)
    empty = client.get("/review/?q=zzz-nothing").get_data(as_text=True)
    assert "No invoices match" in empty and "Clear filters" in empty


def test_not_connected_the_inbox_sends_you_to_connect_connectwise(client, make_tenant):
    sign_in(client, make_tenant("Unplugged IT"))
    for headers in ({}, HX):
        html = client.get("/review/", headers=headers).get_data(as_text=True)
        assert "Connect ConnectWise" in html and 'href="/settings/connectwise/"' in html
        assert 'id="inbox-filters"' not in html


def test_an_htmx_request_gets_the_list_alone_and_a_full_load_of_the_same_url_the_same_rows(app, client, tenant):
    swept(app, tenant)
    add_rows(app, tenant, *[{"invoice_number": f"H-{n}", "company_name": "Acme" if n % 2 else "Beta"}
                            for n in range(8)])
    url = "/review/?q=acme&sort=number"
    partial = client.get(url, headers=HX)
    full = client.get(url)
    fragment, page = partial.get_data(as_text=True), full.get_data(as_text=True)
    assert "<html" not in fragment and fragment.lstrip().startswith("<div id=\"inbox\"")
    assert "<html" in page and 'id="inbox-filters"' in page and 'id="inbox-filters"' not in fragment
    assert numbers(fragment) == numbers(page) == ["H-1", "H-3", "H-5", "H-7"]
    assert partial.headers["HX-Push-Url"] == "/review/?q=acme&sort=number"
    assert "HX-Request" in partial.headers.get("Vary", "") and "HX-Request" in full.headers.get("Vary", "")
    # Back/forward past htmx's cache asks again with HX-History-Restore-Request: the whole page.
    restored = client.get(url, headers={**HX, "HX-History-Restore-Request": "true"}).get_data(as_text=True)
    assert "<html" in restored and numbers(restored) == numbers(page)
    # The form, tabs, sort and pager all swap #inbox and push the URL; typing searches after 300 ms.
    assert 'hx-trigger="submit, change from:.inbox-filter, keyup changed delay:300ms from:#inbox-q' in page
    assert page.count('hx-target="#inbox"') >= 6 + 5 and 'hx-push-url="true"' in fragment
    # The list reloading itself (after a sweep) is no new history entry.
    reload = client.get(url, headers={**HX, "HX-Trigger": "inbox"})
    assert "HX-Push-Url" not in reload.headers


def test_the_poll_that_sees_the_sweep_finished_tells_the_inbox_to_reload(app, client, tenant):
    swept(app, tenant)
    response = client.get("/review/sweep/progress", headers=HX)
    assert response.headers["HX-Trigger-After-Settle"] == "review-swept"
    assert 'hx-trigger="review-swept from:body"' in client.get("/review/").get_data(as_text=True)


def test_another_tenants_rows_never_appear(app, client, make_tenant, sim, tenant):
    swept(app, tenant)
    add_rows(app, tenant, {"invoice_number": "OURS-1", "company_name": "Shared Name Ltd"})
    other = make_tenant("Elsewhere IT")
    with tenant_session(other.id, app.extensions["session_factory"]) as session:
        for n in range(3):
            session.add(ReviewInvoice(id=uuid.uuid4(), tenant_id=other.id, invoice_id=1001 + n,
                                      invoice_number=f"THEIRS-{n}", company_name="Shared Name Ltd",
                                      display_type="Standard", total=Decimal(5), currency="USD", status_id=99,
                                      status_name="Their Status", blocking_flags=1))
            session.add(Reviewer(id=uuid.uuid4(), tenant_id=other.id, invoice_id=1001 + n, user_id=tenant.owner_id,
                                 name="Their Reviewer", source="manual"))
    for args in ({}, {"tab": "all"}, {"tab": "flagged"}, {"q": "shared"}, {"mine": "1"}, {"q": "theirs"}):
        assert "THEIRS" not in " ".join(listed(client, tab=args.pop("tab", "all"), **args))
    page = client.get("/review/?tab=all").get_data(as_text=True)
    assert tab_counts(page)["all"] == 1 and tab_counts(page)["flagged"] == 0
    assert "Their Status" not in page and "Their Reviewer" not in page


def test_the_inbox_makes_no_connectwise_request(app, client, tenant, sim):
    assert run_sweep(services_of(app), str(tenant.id), kind="full", client_options=FAST).outcome == "ok"
    before = len(sim.requests)
    for args in ({}, {"tab": "all"}, {"tab": "flagged", "sort": "amount"}, {"q": "#inv"}, {"page": "2"},
                 {"unread": "1", "mine": "1"}):
        assert client.get("/review/", query_string=args).status_code == 200
        assert client.get("/review/", query_string=args, headers=HX).status_code == 200
    assert len(sim.requests) == before


def test_bulk_selection_waits_for_its_route_and_is_for_people_who_may_decide(app, client, tenant, config):
    from app import create_app

    swept(app, tenant)
    ids = add_rows(app, tenant, {"invoice_number": "B-1"}, {"invoice_number": "B-2", "blocking_flags": 1})
    html = client.get("/review/").get_data(as_text=True)
    has_route = "review_decisions.bulk_preview" in app.view_functions
    assert ('name="invoice_id"' in html) == has_route
    assert 'id="bulk-panel"' in html  # the bulk panel sits above the list either way
    other = create_app(config)
    if "review_decisions.bulk_preview" not in other.view_functions:
        other.add_url_rule("/review/bulk/preview", "review_decisions.bulk_preview", lambda: "", methods=["POST"])
    with other.test_client() as bulk_client:
        sign_in(bulk_client, tenant)
        html = bulk_client.get("/review/").get_data(as_text=True)
        for invoice_id, number in zip(ids, ("B-1", "B-2"), strict=True):
            assert (f'<input type="checkbox" name="invoice_id" value="{invoice_id}">'
                    f'<span class="sr-only">Select invoice {number}</span>') in html
        assert '<form id="bulk-form"' in html
        assert ('hx-post="/review/bulk/preview" hx-target="#bulk-panel" hx-include="#bulk-form">Approve selected'
                in html)
        assert '''hx-include="#bulk-page-ids" hx-vals='{"only_unflagged": "1"}'>Select all with no open flags''' in html
        page_ids = html[html.index('id="bulk-page-ids"'):html.index('<form id="bulk-form"')]
        assert all(f'value="{i}"' in page_ids for i in ids)
        viewer = add_user(app, tenant, "viewer")
        sign_in(bulk_client, tenant, viewer)
        html = bulk_client.get("/review/").get_data(as_text=True)
        assert "B-1" in html and 'name="invoice_id"' not in html and "Approve selected" not in html
    other.extensions["engine"].dispose()


def test_a_currency_format_comes_from_any_snapshot_on_the_page_and_a_missing_one_is_remembered(
        app, tenant, redis_conn):
    assert run_sweep(services_of(app), str(tenant.id), kind="full", client_options=FAST).outcome == "ok"
    services = services_of(app)
    with tenant_session(tenant.id, services.session_factory) as session:
        eur = session.execute(select(ReviewInvoice).where(ReviewInvoice.currency == "EUR")).scalars().first()
        assert eur is not None
        # An invoice that left the open set has no snapshot: first on the page, it must not hide the EUR format.
        gone = ReviewInvoice(id=uuid.uuid4(), tenant_id=tenant.id, invoice_id=900_001, invoice_number="GONE-1",
                             company_name="Gone GmbH", display_type="Standard", total=Decimal("1234.5"),
                             currency="EUR", status_name="Sent", is_open=False)
        lonely = ReviewInvoice(id=uuid.uuid4(), tenant_id=tenant.id, invoice_id=900_002, invoice_number="GONE-2",
                               company_name="Gone Ltd", display_type="Standard", total=Decimal(1), currency="GBP",
                               status_name="Sent", is_open=False)
        formats = inbox.currency_formats(session, redis_conn, services.keyring, [gone, eur, lonely])
        assert formats["EUR"].symbol == "€" and formats["EUR"].decimal_sep == ","
        assert "GBP" not in formats  # shown by the fallback: "1.00 GBP"
    assert redis_conn.get(f"bi:review:currency:{tenant.id}:GBP") == b"{}"
    assert 0 < redis_conn.ttl(f"bi:review:currency:{tenant.id}:GBP") <= inbox.CURRENCY_CACHE_SECONDS // 6
    assert inbox.fallback_currency("GBP").show_code and inbox.fallback_currency("USD").symbol == "$"
