"""Bulk approve from the inbox: the preview says what will happen (approved and written back; flagged, skipped unless
confirmed one by one; skipped, and why); the run is a job on ``default`` whose panel polls its progress and then
sums up; each invoice approved gets its own timeline entry, audit row (with the request's source IP) and write-back,
which lands in the simulator; flagged invoices are skipped without confirmation, also when the flags appeared after
the preview."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from app.jobs.queue import get_queue
from app.review import summary
from app.review.models import Flag
from app.review.models import ReviewInvoice as Row
from app.security.crypto import FieldRef
from app.services import services_of
from tests.conftest import sign_in
from tests.integration.invoice_helpers import add_user, htmx, sim_knobs_at_defaults  # noqa: F401
from tests.integration.test_review_decisions import (
    audits,
    cw_status,
    review,
    run_jobs,
    session_of,
    set_reviewers,
    swept_tenant,
    timeline_kinds,
    writebacks,
)


@pytest.fixture()
def swept(request, app, client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return swept_tenant(request, app, client, make_tenant, sim, "Bulk Co")


def invoices(app, tenant, n: int, *, flagged: bool = False) -> list[int]:  # type: ignore[no-untyped-def]
    """``n`` invoices whose ConnectWise status is New: free of open flags, or with open error or warning flags."""
    with session_of(app, tenant) as s:
        query = select(Row.invoice_id).where(Row.is_open, Row.status_id == 1).order_by(Row.invoice_id)
        query = query.where(Row.blocking_flags > 0) if flagged else query.where(Row.open_flags == 0)
        found = list(s.execute(query.limit(n)).scalars())
    assert len(found) == n
    for invoice_id in found:
        set_reviewers(app, tenant, invoice_id, tenant.owner_id)
    return found


def preview(client, ids, **extra):  # type: ignore[no-untyped-def]
    return client.post("/review/bulk/preview", data={"invoice_id": [str(i) for i in ids], **extra},
                       headers=htmx(client))


def start(client, ids, confirmed=()):  # type: ignore[no-untyped-def]
    return client.post("/review/bulk", data={"approve_id": [str(i) for i in ids],
                                             "confirm_id": [str(i) for i in confirmed]}, headers=htmx(client))


def run_id_of(html: str) -> str:
    match = re.search(r'hx-get="/review/bulk/([0-9a-f]{32})"', html)
    assert match, html[:800]
    return match.group(1)


def test_bulk_approve_skips_flagged_invoices_without_confirmation_and_writes_each_back(
        app, client, swept, sim, redis_conn):
    clean = invoices(app, swept, 2)
    [flagged] = invoices(app, swept, 1, flagged=True)
    mine = invoices(app, swept, 3)[2]
    client.post(f"/review/{mine}/approve", headers=htmx(client))
    get_queue(redis_conn, "connectwise").empty()

    shown = preview(client, [*clean, flagged, mine, 987654])
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and shown.headers["HX-Reswap"] == "outerHTML"
    assert "<strong>2</strong> will be approved and written back to ConnectWise." in html
    assert "<strong>1</strong> has open error or warning flags and is skipped unless you confirm each" in html
    assert f'name="confirm_id" value="{flagged}"' in html
    assert "You have already approved it." in html and "Not in review." in html
    assert review(app, swept, clean[0]).state == "needs_review", "a preview changes nothing"

    default = get_queue(redis_conn, "default")
    default.empty()
    started = start(client, [*clean, flagged])
    html = started.get_data(as_text=True)
    assert started.status_code == 200 and 'hx-trigger="every 1s"' in html and "0 of 3 done" in html
    run = run_id_of(html)
    [job] = default.jobs
    assert list(job.args) == [str(swept.id), run], "ids only, tenant first"

    run_jobs(app, redis_conn, "default")
    done = client.get(f"/review/bulk/{run}", headers=htmx(client)).get_data(as_text=True)
    assert "<strong>2</strong> approved, <strong>1</strong> skipped, <strong>0</strong> failed." in done
    assert re.search(r"\d+ open error or warning flags?, not confirmed\.", done)
    assert "2 under way" in done and 'hx-trigger="every 1s"' in done, "polls until the write-backs are done"
    for invoice_id in clean:
        assert review(app, swept, invoice_id).state == "approved"
        assert [k for k, _ in timeline_kinds(app, swept, invoice_id)] == ["approved"]
    assert review(app, swept, flagged).state == "needs_review"
    assert timeline_kinds(app, swept, flagged) == [] and writebacks(app, swept, flagged) == []
    entries = [e for e in audits(app, swept, "review.approved") if int(e.target_id) in clean]
    assert len(entries) == 2 and {e.source_ip for e in entries} == {"127.0.0.1"}
    assert {e.actor_id for e in entries} == {str(swept.owner_id)}

    run_jobs(app, redis_conn)
    for invoice_id in clean:
        assert cw_status(sim, invoice_id) == (3, "Approved")
        assert [k for k, _ in timeline_kinds(app, swept, invoice_id)] == ["approved", "writeback_succeeded"]
    assert cw_status(sim, flagged)[0] == 1
    final = client.get(f"/review/bulk/{run}", headers=htmx(client)).get_data(as_text=True)
    assert "Written back to ConnectWise: 2." in final and "every 1s" not in final


def test_a_flagged_invoice_confirmed_on_its_own_is_approved(app, client, swept, redis_conn):
    [flagged, other] = invoices(app, swept, 2, flagged=True)
    run = run_id_of(start(client, [flagged, other], confirmed=[flagged]).get_data(as_text=True))
    run_jobs(app, redis_conn, "default")
    assert review(app, swept, flagged).state == "approved"
    assert review(app, swept, other).state == "needs_review"
    [(kind, detail)] = timeline_kinds(app, swept, flagged)
    assert kind == "approved" and detail["confirmed_flags"] >= 1
    assert "<strong>1</strong> approved, <strong>1</strong> skipped" in client.get(
        f"/review/bulk/{run}", headers=htmx(client)).get_data(as_text=True)


def test_flags_raised_after_the_preview_still_stop_an_unconfirmed_approval(app, client, swept, redis_conn):
    [invoice_id] = invoices(app, swept, 1)
    assert "<strong>1</strong> will be approved" in preview(client, [invoice_id]).get_data(as_text=True)
    services = services_of(app)
    with session_of(app, swept) as s:
        flag = Flag(id=uuid.uuid4(), tenant_id=swept.id, invoice_id=invoice_id, invoice_number="x", rule="test_rule",
                    target_type="invoice", target_id=invoice_id, severity="warning")
        flag.message_enc = services.keyring.encrypt("Appeared since", FieldRef(swept.id, Flag.__tablename__, flag.id,
                                                                               "message"))
        s.add(flag)
        summary.refresh_flags(s, [invoice_id])
    start(client, [invoice_id])
    run_jobs(app, redis_conn, "default")
    assert review(app, swept, invoice_id).state == "needs_review"


def test_select_all_with_no_open_flags_keeps_only_invoices_free_of_flags(app, client, swept):
    clean = invoices(app, swept, 2)
    [flagged] = invoices(app, swept, 1, flagged=True)
    html = preview(client, [*clean, flagged], only_unflagged="1").get_data(as_text=True)
    assert "<strong>2</strong> will be approved" in html and "confirm_id" not in html
    nothing = preview(client, [flagged], only_unflagged="1")
    assert nothing.status_code == 422 and "No invoice on this page is free of open flags" in nothing.get_data(
        as_text=True)


def test_an_empty_or_oversized_selection_is_refused(client, swept):
    empty = preview(client, [])
    assert empty.status_code == 422 and "Select at least one invoice" in empty.get_data(as_text=True)
    assert start(client, []).status_code == 422
    too_many = preview(client, range(1, 502))
    assert too_many.status_code == 422 and "at most 500" in too_many.get_data(as_text=True)


def test_only_review_roles_may_bulk_approve(app, client, swept):
    [invoice_id] = invoices(app, swept, 1)
    sign_in(client, swept, add_user(app, swept, "viewer"))
    assert preview(client, [invoice_id]).status_code == 403
    assert start(client, [invoice_id]).status_code == 403
    assert client.get(f"/review/bulk/{'0' * 32}", headers=htmx(client)).status_code == 403


def test_an_unknown_run_is_404(client, swept):
    assert client.get(f"/review/bulk/{'a' * 32}", headers=htmx(client)).status_code == 404
    assert client.get("/review/bulk/not-a-run", headers=htmx(client)).status_code == 404


def test_the_bulk_panel_renders_empty_in_the_inbox(app, client, swept):
    html = client.get("/review/").get_data(as_text=True)
    assert 'id="bulk-panel"' in html and "Approve selected" in html
