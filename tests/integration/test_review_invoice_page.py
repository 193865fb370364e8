"""The invoice's review page (/review/<invoice>): the branded invoice from its snapshot by the public page's renderer
and no ConnectWise call, the flags pane (severity labels, sentences, deeplinks into ConnectWise, Mark as OK with its
audit row and timeline entry, undo), read marks, the 404 of an invoice not in review, an invoice that has left the
open set, the changed-in-ConnectWise banner and the refresh that rescans just this invoice."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid
from html import unescape
from urllib.parse import unquote

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app.audit.log import Actor
from app.audit.models import AuditEntry
from app.branding import store as branding_store
from app.invoices.html import render_document_html
from app.invoices.service import build_document
from app.jobs.queue import get_queue
from app.review import summary
from app.review.callbacks import enable_callbacks
from app.review.events import of_invoice
from app.review.flags import open_flags
from app.review.models import Flag, ReadMark, Reviewer, ReviewInvoice, Snapshot
from app.review.snapshots import payloads_of
from app.review.sweep import run_sweep
from app.services import services_of
from app.tenancy import tenant_session
from cwsim.callbacks import wait_for
from tests.conftest import sign_in
from tests.integration.invoice_helpers import (  # noqa: F401
    add_user,
    connected_tenant,
    htmx,
    rebuild_afterwards,
    sim_knobs_at_defaults,
)
from tests.integration.test_review_sweep import FAST, cw, marked_products, open_invoice_ids

ENTRY_POINT = "/v4_6_release/services/system_io/router/openrecord.rails"


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Review Page Co")


def full_sweep(app, tenant, **options) -> None:  # type: ignore[no-untyped-def]
    result = run_sweep(services_of(app), str(tenant.id), kind="full", client_options=FAST, **options)
    assert result.outcome == "ok", result.reason


def session_of(app, tenant):  # type: ignore[no-untyped-def]
    return tenant_session(tenant.id, app.extensions["session_factory"])


def worst_flagged_invoice(app, tenant) -> ReviewInvoice:  # type: ignore[no-untyped-def]
    """The open invoice with the worst flags, and of those the most (ties: the lowest id)."""
    with session_of(app, tenant) as session:
        row = session.execute(select(ReviewInvoice).where(ReviewInvoice.is_open)
                              .order_by(ReviewInvoice.worst_flag.desc(), ReviewInvoice.open_flags.desc(),
                                        ReviewInvoice.invoice_id)).scalars().first()
        assert row is not None and row.open_flags > 0
        session.expunge(row)
        return row


def flags_of(app, tenant, invoice_id: int) -> list:  # type: ignore[no-untyped-def]
    services = services_of(app)
    with session_of(app, tenant) as session:
        return [f for f in open_flags(session, services.keyring) if f.invoice_id == invoice_id]


def pane_of(html: str) -> str:
    start = html.index('id="review-flags"')
    return html[start:html.index("</section>", start)]


def test_the_page_shows_the_branded_invoice_from_its_snapshot_by_the_public_renderer_without_connectwise(
        app, client, tenant, sim):
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    services = services_of(app)
    with session_of(app, tenant) as session:
        snap = session.execute(select(Snapshot).where(Snapshot.invoice_id == row.invoice_id)).scalar_one()
        expected = render_document_html(build_document(payloads_of(services.keyring, snap)),
                                        branding_store.load(session, tenant.id).branding, logo_url=None, pdf_url=None)
    asked = len(sim.requests)
    started = time.perf_counter()
    response = client.get(f"/review/{row.invoice_id}")
    took = time.perf_counter() - started
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    assert len(sim.requests) == asked, "the review page never calls ConnectWise"
    assert str(expected) in html, "the same fragment the public page renders, from the stored payloads"
    assert 'href="/branding/' in html and "css/invoice.css" in html and "css/review-page.css" in html
    assert row.invoice_number in html and 'id="review-flags"' in html
    for panel in ("review-reviewers", "review-decision", "review-timeline", "review-banner"):
        assert f'id="{panel}"' in html, panel
    assert took < 1.0, f"served from our tables: {took:.3f} s"


def test_an_invoice_never_in_review_or_of_another_tenant_answers_404(app, client, tenant, make_tenant, sim):
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    never = max(i["id"] for i in sim.state.data["invoices"].iter()) + 1000
    missing = client.get(f"/review/{never}")
    assert missing.status_code == 404 and "not in review" in missing.get_data(as_text=True)
    other = make_tenant("Someone Else IT")
    sign_in(client, other)
    assert client.get(f"/review/{row.invoice_id}").status_code == 404  # RLS: another tenant's review is no row
    assert client.post(f"/review/{row.invoice_id}/refresh", headers=htmx(client)).status_code == 404


def test_the_flags_pane_lists_each_open_flag_with_its_coloured_label_sentence_and_connectwise_deeplink(
        app, client, tenant, sim):
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    flags = flags_of(app, tenant, row.invoice_id)
    pane = unescape(pane_of(client.get(f"/review/{row.invoice_id}").get_data(as_text=True)))
    rank = {"error": 0, "warning": 1, "info": 2}
    labels = re.findall(r'class="badge sev-(\w+)">(\w+)</span>', pane)
    assert labels == [(f.severity, f.severity.upper()) for f in sorted(flags, key=lambda f: rank[f.severity])]
    for flag in flags:
        assert flag.message in pane
    links = re.findall(r'<a href="([^"]+)" target="_blank" rel="noopener noreferrer">', pane)
    assert links and all(link.startswith(sim.url + ENTRY_POINT + "?") for link in links)
    assert all(f"companyName={sim.company_id}" in link and "recid=" in link for link in links)
    time_flags = [f for f in flags if f.target_type == "time_entry"]
    for flag in time_flags:
        assert f"recordType=TimeEntryFV&recid={flag.target_id}" in pane
    assert pane.count('type="checkbox"') == len(flags) and "Mark as OK" in pane
    assert 'href="/settings/review/"' in pane, "the owner may open the rule settings from the pane's gear"


def test_mark_as_ok_turns_the_flag_green_audits_it_with_the_source_ip_adds_a_timeline_entry_and_undo_reverses_it(
        app, client, tenant, sim):
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    flag = next(f for f in flags_of(app, tenant, row.invoice_id) if f.severity in ("error", "warning"))
    url = f"/review/{row.invoice_id}/flags/{flag.id}/ok"
    asked = len(sim.requests)
    marked = client.post(url, data={"ok": "1"}, headers=htmx(client), environ_base={"REMOTE_ADDR": "203.0.113.7"})
    html = marked.get_data(as_text=True)
    assert marked.status_code == 200, html[:500]
    assert html.lstrip().startswith('<section id="review-flags"'), "the pane itself is the swap"
    item = html[html.index(f'id="flag-ok-{flag.id}"') - 900:html.index(f'id="flag-ok-{flag.id}"') + 900]
    assert 'class="flag is-ok"' in item and "checked" in item and "Marked OK" in item
    assert 'id="review-timeline"' in html and 'hx-swap-oob="true"' in html, "the timeline comes along out of band"
    assert len(sim.requests) == asked
    with session_of(app, tenant) as session:
        after = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == row.invoice_id)).scalar_one()
        assert after.open_flags == row.open_flags - 1 and after.blocking_flags == row.blocking_flags - 1
        [audit] = session.execute(select(AuditEntry).where(AuditEntry.action == "review.flag_marked_ok")).scalars()
        assert (audit.target_id, audit.source_ip, audit.actor_id) == (str(flag.id), "203.0.113.7",
                                                                       str(tenant.owner_id))
        entries = of_invoice(session, services_of(app).keyring, row.invoice_id)
        assert [(e.kind, e.actor.id, e.detail["rule"]) for e in entries] == [
            ("flag_marked_ok", str(tenant.owner_id), flag.rule)]
        assert entries[0].detail["target"] == f"{flag.target_type} {flag.target_id}"
    # The same state asked again (a double click) records nothing more.
    assert client.post(url, data={"ok": "1"}, headers=htmx(client)).status_code == 200
    # Unticked: the box posts nothing, which means "not OK".
    undone = client.post(url, headers=htmx(client)).get_data(as_text=True)
    item = undone[undone.index(f'id="flag-ok-{flag.id}"') - 900:undone.index(f'id="flag-ok-{flag.id}"') + 300]
    assert 'class="flag is-ok"' not in item and "checked" not in item and "Mark as OK" in item
    with session_of(app, tenant) as session:
        back = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == row.invoice_id)).scalar_one()
        assert (back.open_flags, back.blocking_flags) == (row.open_flags, row.blocking_flags)
        actions = session.execute(select(AuditEntry.action).where(AuditEntry.action.like("review.flag_%"))
                                  .order_by(AuditEntry.seq)).scalars().all()
        assert actions == ["review.flag_marked_ok", "review.flag_unmarked"]
        kinds = [e.kind for e in of_invoice(session, services_of(app).keyring, row.invoice_id)]
        assert kinds == ["flag_marked_ok", "flag_unmarked"]
        assert session.get(Flag, flag.id).marked_ok_at is None


def test_a_flag_of_another_invoice_or_one_that_does_not_exist_is_404_and_changes_nothing(app, client, tenant):
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    with session_of(app, tenant) as session:
        other = session.execute(select(Flag).where(Flag.invoice_id != row.invoice_id,
                                                   Flag.cleared_at.is_(None))).scalars().first()
        assert other is not None
        other_id = other.id
    for flag_id in (other_id, uuid.uuid4()):
        response = client.post(f"/review/{row.invoice_id}/flags/{flag_id}/ok", data={"ok": "1"},
                                headers=htmx(client))
        assert response.status_code == 404
    with session_of(app, tenant) as session:
        assert session.get(Flag, other_id).marked_ok_at is None
        assert not session.execute(select(AuditEntry).where(AuditEntry.action == "review.flag_marked_ok")).first()


def test_a_viewer_sees_the_flags_without_the_toggle_or_the_gear_and_is_refused_marking_and_refresh(
        app, client, tenant):
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    flag = flags_of(app, tenant, row.invoice_id)[0]
    viewer = add_user(app, tenant, "viewer")
    sign_in(client, tenant, viewer)
    html = client.get(f"/review/{row.invoice_id}").get_data(as_text=True)
    pane = pane_of(html)
    assert "sev-" in pane and 'type="checkbox"' not in pane and 'href="/settings/review/"' not in pane
    assert "/refresh" not in html
    assert client.post(f"/review/{row.invoice_id}/flags/{flag.id}/ok", data={"ok": "1"},
                       headers=htmx(client)).status_code == 403
    assert client.post(f"/review/{row.invoice_id}/refresh", headers=htmx(client)).status_code == 403
    # A reviewer may mark flags OK but not change the rules: no gear.
    reviewer = add_user(app, tenant, "reviewer")
    sign_in(client, tenant, reviewer)
    pane = pane_of(client.get(f"/review/{row.invoice_id}").get_data(as_text=True))
    assert 'type="checkbox"' in pane and 'href="/settings/review/"' not in pane


def test_an_invoice_with_no_flags_says_there_is_nothing_to_check(app, client, tenant):
    full_sweep(app, tenant, evaluate=marked_products)  # flags only lines marked REVIEWME: none in the seed
    with session_of(app, tenant) as session:
        invoice_id = session.execute(select(ReviewInvoice.invoice_id).where(ReviewInvoice.is_open)).scalars().first()
    pane = pane_of(client.get(f"/review/{invoice_id}").get_data(as_text=True))
    assert "No flags: nothing to check on this invoice" in pane and "sev-" not in pane


def test_opening_the_page_records_the_users_read_mark_and_moves_it_forward(app, client, tenant):
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    client.get(f"/review/{row.invoice_id}")
    with session_of(app, tenant) as session:
        [first] = session.execute(select(ReadMark).where(ReadMark.invoice_id == row.invoice_id)).scalars()
        assert first.user_id == tenant.owner_id and first.read_at >= row.changed_at
        first_at = first.read_at
    client.get(f"/review/{row.invoice_id}")
    with session_of(app, tenant) as session:
        [again] = session.execute(select(ReadMark).where(ReadMark.invoice_id == row.invoice_id)).scalars()
        assert again.id == first.id and again.read_at > first_at  # one row per user and invoice, moved forward
        assert session.execute(select(func.count()).select_from(ReadMark)).scalar_one() == 1


def test_an_invoice_that_left_the_open_set_shows_its_review_and_the_note_without_a_document(
        app, client, tenant, sim, request):
    rebuild_afterwards(request, sim)
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    sent = next(s for s in sim.state.data["billingStatuses"].iter() if s["sentFlag"] and not s["closedFlag"])
    with cw(sim) as api:
        api.patch(f"finance/invoices/{row.invoice_id}", [{"op": "replace", "path": "status", "value": {"id": sent["id"]}}])
    assert row.invoice_id not in open_invoice_ids(sim)
    full_sweep(app, tenant)
    response = client.get(f"/review/{row.invoice_id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    assert "No longer open in ConnectWise (sent or closed)" in html
    assert "bi-invoice" not in html and 'id="review-flags"' not in html
    assert row.invoice_number in html and row.company_name in unescape(html)
    for panel in ("review-reviewers", "review-decision", "review-timeline"):
        assert f'id="{panel}"' in html, panel
    assert "/refresh" not in html


def test_the_banner_says_when_connectwise_changed_the_invoice_after_the_snapshot(app, client, tenant):
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    quiet = client.get(f"/review/{row.invoice_id}").get_data(as_text=True)
    assert "As read from ConnectWise Today" in quiet and "Changed in ConnectWise" not in quiet
    now = dt.datetime.now(dt.UTC)
    with session_of(app, tenant) as session:
        snap = session.execute(select(Snapshot).where(Snapshot.invoice_id == row.invoice_id)).scalar_one()
        snap.snapshot_at = now - dt.timedelta(minutes=20)
        summary.note_cw_change(session, row.invoice_id, now - dt.timedelta(minutes=3, seconds=5))
    html = client.get(f"/review/{row.invoice_id}").get_data(as_text=True)
    banner = html[html.index('id="review-banner"'):html.index("</div>", html.index('id="review-banner"'))]
    assert "Changed in ConnectWise 3 minutes ago" in banner and "is-changed" in banner
    assert f'hx-post="/review/{row.invoice_id}/refresh"' in banner and ">Refresh</button>" in banner
    # A note older than the snapshot was answered by it: no banner.
    with session_of(app, tenant) as session:
        summary.note_cw_change(session, row.invoice_id, now - dt.timedelta(minutes=21))
    assert "Changed in ConnectWise" not in client.get(f"/review/{row.invoice_id}").get_data(as_text=True)


def test_refresh_rescans_just_this_invoice_answers_the_banner_and_reloads_the_page_within_seconds(
        app, client, tenant, sim, request):
    rebuild_afterwards(request, sim)
    full_sweep(app, tenant)
    open_ids = open_invoice_ids(sim)
    product = next(p for p in sim.state.data["products"].iter() if p.get("invoice", {}).get("id") in open_ids)
    with session_of(app, tenant) as session:
        row = session.execute(select(ReviewInvoice).where(ReviewInvoice.invoice_id == product["invoice"]["id"])
                              ).scalar_one()
    with session_of(app, tenant) as session:
        before = session.execute(select(Snapshot.content_hash).where(Snapshot.invoice_id == row.invoice_id)
                                 ).scalar_one()
    with cw(sim) as api:
        api.patch(f"procurement/products/{product['id']}",
                  [{"op": "replace", "path": "customerDescription", "value": "Firewall renewal, 24 months"}])
    with session_of(app, tenant) as session:
        summary.note_cw_change(session, row.invoice_id, dt.datetime.now(dt.UTC))
    asked = len(sim.requests)
    started = time.perf_counter()
    response = client.post(f"/review/{row.invoice_id}/refresh", headers=htmx(client))
    took = time.perf_counter() - started
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.headers["HX-Redirect"] == f"/review/{row.invoice_id}"
    requests = sim.requests[asked:]
    # The sweep's read for one invoice (statuses, header, lines, references), then its audit trail: no more.
    assert 0 < len(requests) <= 12, [r.path for r in requests]
    assert requests[-1].path.endswith("system/audittrail") and f"id={row.invoice_id}" in requests[-1].query
    listed = [r for r in requests if r.path.rstrip("/").endswith("finance/invoices")]
    assert all(str(row.invoice_id) in unquote(r.query) for r in listed), "this invoice only, not the open set"
    assert took < 3.0, f"a refresh a person waits for: {took:.2f} s"
    with session_of(app, tenant) as session:
        after = session.execute(select(Snapshot).where(Snapshot.invoice_id == row.invoice_id)).scalar_one()
        assert after.content_hash != before
        assert session.execute(select(ReviewInvoice.cw_changed_at)
                               .where(ReviewInvoice.invoice_id == row.invoice_id)).scalar_one() is None
    html = client.get(f"/review/{row.invoice_id}").get_data(as_text=True)
    document = html[html.index('class="invoice-frame"'):html.index('class="review-panels"')]
    assert "Firewall renewal, 24 months" in document  # the page shows what was read
    assert "Changed in ConnectWise " + "1" not in html and "is-changed" not in html
    assert "Refreshed from ConnectWise: the invoice changed" in html


def test_a_refresh_that_connectwise_refuses_says_why_in_the_banner_and_changes_nothing(app, client, tenant, sim):
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    with session_of(app, tenant) as session:
        summary.note_cw_change(session, row.invoice_id, dt.datetime.now(dt.UTC))
        before = session.execute(select(Snapshot.content_hash, Snapshot.snapshot_at)
                                 .where(Snapshot.invoice_id == row.invoice_id)).one()
    sim.configure(revoked=True)
    response = client.post(f"/review/{row.invoice_id}/refresh", headers=htmx(client))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<div id="review-banner"')
    assert "Not refreshed: ConnectWise could not be read:" in html and "Nothing stored has changed" in html
    assert "Changed in ConnectWise" in html and ">Try again</button>" in html
    with session_of(app, tenant) as session:
        assert session.execute(select(Snapshot.content_hash, Snapshot.snapshot_at)
                               .where(Snapshot.invoice_id == row.invoice_id)).one() == before
        assert session.execute(select(ReviewInvoice.cw_changed_at)
                               .where(ReviewInvoice.invoice_id == row.invoice_id)).scalar_one() is not None


def test_a_connectwise_callback_for_the_invoice_raises_the_banner_until_its_rescan_reads_the_change(
        app, client, tenant, sim, request, redis_conn):
    rebuild_afterwards(request, sim)  # drops the callbacks registered here
    sim.state.deliveries.clear()
    full_sweep(app, tenant)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    request.addfinalizer(server.shutdown)
    enable_callbacks(services_of(app), str(tenant.id), f"http://127.0.0.1:{server.server_port}",
                     Actor.system("tests"), client_options=FAST)
    queue = get_queue(redis_conn, "connectwise")
    queue.empty()
    invoice_id = min(open_invoice_ids(sim))
    with cw(sim) as api:  # ConnectWise changes the invoice and calls us back, signed
        api.patch(f"finance/invoices/{invoice_id}", [{"op": "replace", "path": "reference",
                                                      "value": "PO changed upstream"}])
    [delivery] = wait_for(sim.state, 1)
    assert delivery.attempts == [202]
    html = client.get(f"/review/{invoice_id}").get_data(as_text=True)
    assert "Changed in ConnectWise just now" in html
    with app.app_context():  # the rescan the callback queued
        SimpleWorker([queue], connection=redis_conn, serializer=queue.serializer).work(burst=True)
    assert "Changed in ConnectWise" not in client.get(f"/review/{invoice_id}").get_data(as_text=True)


def test_a_reviewer_opening_the_page_is_recorded_as_viewed_once_for_this_content(app, client, tenant):
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    with session_of(app, tenant) as session:
        session.add(Reviewer(id=uuid.uuid4(), tenant_id=tenant.id, invoice_id=row.invoice_id,
                             user_id=tenant.owner_id, name="Olive Owner", state="waiting", source="manual"))
    client.get(f"/review/{row.invoice_id}")
    html = client.get(f"/review/{row.invoice_id}").get_data(as_text=True)
    with session_of(app, tenant) as session:
        reviewer = session.execute(select(Reviewer).where(Reviewer.invoice_id == row.invoice_id)).scalar_one()
        assert reviewer.state == "viewed" and reviewer.state_at is not None
        kinds = [e.kind for e in of_invoice(session, services_of(app).keyring, row.invoice_id)]
    assert kinds == ["viewed"], "two visits to the same content are one 'viewed'"
    assert "Viewed" in html[html.index('id="review-reviewers"'):]


def test_refreshing_an_invoice_connectwise_has_since_sent_takes_it_out_of_review_and_says_so(
        app, client, tenant, sim, request):
    rebuild_afterwards(request, sim)
    full_sweep(app, tenant)
    row = worst_flagged_invoice(app, tenant)
    sent = next(s for s in sim.state.data["billingStatuses"].iter() if s["sentFlag"] and not s["closedFlag"])
    with cw(sim) as api:
        api.patch(f"finance/invoices/{row.invoice_id}", [{"op": "replace", "path": "status", "value": {"id": sent["id"]}}])
    response = client.post(f"/review/{row.invoice_id}/refresh", headers=htmx(client))
    assert response.status_code == 200 and response.headers["HX-Redirect"] == f"/review/{row.invoice_id}"
    html = client.get(f"/review/{row.invoice_id}").get_data(as_text=True)
    assert "no longer has this invoice open (sent or closed)" in html
    assert "No longer open in ConnectWise (sent or closed)" in html and "bi-invoice" not in html
    with session_of(app, tenant) as session:
        assert session.execute(select(Snapshot).where(Snapshot.invoice_id == row.invoice_id)).first() is None
        assert not session.execute(select(ReviewInvoice.is_open)
                                   .where(ReviewInvoice.invoice_id == row.invoice_id)).scalar_one()
