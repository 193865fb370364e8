"""Guest reviewer links: a link opens one invoice's review with no sign-in (the token leaves the address, only its
hash is stored, never logged); a guest can view, download the PDF, comment, and approve or reject only when
assigned, attributed "<name> (guest, <email>)" and audited; every other URL answers a guest as a stranger;
revocation, expiry and the idle timeout take effect at once; revoked, expired and unknown links get one page; the
guest session is its own cookie on /g/ and never a user; rate limits per link and per IP."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import uuid

import pytest
from sqlalchemy import select, text, update

from app.audit.models import AuditEntry
from app.review import guests
from app.review.events import of_invoice
from app.review.guest_models import GuestLink
from app.review.models import Event, Reviewer, ReviewInvoice
from app.security.limits import reset_limits
from app.services import services_of
from app.tenancy import tenant_session
from tests.conftest import csrf_of, sign_in
from tests.integration.invoice_helpers import add_user, htmx, sim_knobs_at_defaults  # noqa: F401
from tests.integration.test_review_decisions import swept_tenant

AT = chr(64)
GUEST_EMAIL = f"ap{AT}client.example"
STAFF_URL = re.compile(r'"/review/')  # a link or form target on the staff pages
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def _fresh_limits(app):  # type: ignore[no-untyped-def]
    with app.app_context():
        reset_limits()
    yield


@pytest.fixture()
def swept(request, app, client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return swept_tenant(request, app, client, make_tenant, sim, "Guests Co")


def session_of(app, tenant):  # type: ignore[no-untyped-def]
    return tenant_session(tenant.id, app.extensions["session_factory"])


def pick(app, tenant, flagged: bool = False) -> int:  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as s:
        rows = s.execute(select(ReviewInvoice).where(ReviewInvoice.is_open).order_by(ReviewInvoice.invoice_id)
                         ).scalars().all()
        found = [r.invoice_id for r in rows if (r.blocking_flags > 0) == flagged]
    assert found
    return found[0]


def invite(client, invoice_id: int, email: str = GUEST_EMAIL, name: str = "Ana Ruiz") -> str:  # type: ignore[no-untyped-def]
    """Invite a guest reviewer from the invoice's panel (as the signed-in staff client); the path of the link."""
    response = client.post(f"/review/{invoice_id}/guests", data={"email": email, "name": name}, headers=htmx(client))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    match = re.search(r'data-copy="[^"]*(/g/[A-Za-z0-9_-]{43})"', response.get_data(as_text=True))
    assert match, "the new link is shown once, to copy"
    return match.group(1)


def issue(app, tenant, invoice_id: int, email: str = f"boss{AT}client.example", name: str = "Bo Boss") -> str:  # type: ignore[no-untyped-def]
    """A link without the reviewer assignment (what a mention of someone without an account makes)."""
    with session_of(app, tenant) as s:
        _link, url = guests.issue_link(s, services_of(app), tenant.id, invoice_id, email=email, name=name,
                                       member_id=None, created_by=None)
    return url[url.index("/g/"):]


def open_as_guest(app, path: str):  # type: ignore[no-untyped-def]
    guest = app.test_client()
    response = guest.get(path)
    assert response.status_code == 303 and response.headers["Location"].endswith("/g/review"), response.status_code
    return guest


def guest_csrf(guest) -> str:  # type: ignore[no-untyped-def]
    page = guest.get("/g/review")
    assert page.status_code == 200
    return CSRF_FIELD.search(page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]


def guest_post(guest, path: str, **data: str):  # type: ignore[no-untyped-def]
    token = guest_csrf(guest)
    return guest.post(path, data=data, headers={"HX-Request": "true", "X-CSRF-Token": token})


def test_a_guest_link_opens_the_review_without_sign_in_and_the_token_leaves_the_address(app, client, swept):
    invoice_id = pick(app, swept, flagged=True)
    path = invite(client, invoice_id)
    guest = app.test_client()
    opened = guest.get(path)
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/g/review")
    cookies = opened.headers.getlist("Set-Cookie")
    assert len(cookies) == 1 and cookies[0].startswith("bi_guest=") and "Path=/g/" in cookies[0]
    assert "HttpOnly" in cookies[0]
    page = guest.get("/g/review")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "private, no-store"
    with session_of(app, swept) as s:
        number = s.execute(select(ReviewInvoice.invoice_number).where(ReviewInvoice.invoice_id == invoice_id)
                           ).scalar_one()
    assert number in body and "Ana Ruiz" in body and "Download PDF" in body
    assert 'id="review-flags"' in body and "Rule settings" not in body  # flags, without the gear
    assert "flag-ok" not in body and "Mark as OK" not in body  # and without Mark as OK
    assert not STAFF_URL.search(body) and "Sign out" not in body  # no staff menu, no staff URL
    assert ">Approve</button>" in body  # invited as a reviewer


def test_the_token_is_stored_only_as_its_hash_and_never_logged(app, client, swept, owner_engine, caplog):
    invoice_id = pick(app, swept)
    with caplog.at_level(logging.INFO):
        path = invite(client, invoice_id)
        token = path.rsplit("/", 1)[1]
        guest = open_as_guest(app, path)
        guest.get("/g/review")
        app.test_client().get("/g/" + "Z" * 43)
    assert len(token) >= 43  # 32 random bytes: 256 bits
    with session_of(app, swept) as s:
        link = s.execute(select(GuestLink).where(GuestLink.invoice_id == invoice_id)).scalar_one()
        assert link.token_hash == hashlib.sha256(token.encode()).digest()
        assert GUEST_EMAIL.encode() not in link.email_enc  # the recipient is encrypted too
    with owner_engine.connect() as conn:
        tables = [r[0] for r in conn.execute(text("select tablename from pg_tables where schemaname = 'public'"))]
        for table in tables:
            rows = conn.execute(text(f"select row_to_json(t)::text from {table} t")).scalars().all()  # noqa: S608
            assert not any(token in row for row in rows), table
    lines = [r.getMessage() for r in caplog.records] + [str(getattr(r, "path", "")) for r in caplog.records]
    assert any("/g/<token>" in line for line in lines)
    assert not any(token in line or "Z" * 43 in line for line in lines)
    keys = [k.decode() for k in app.extensions["redis"].keys("*")]
    assert not any(token in k for k in keys)


def test_revoked_expired_and_unknown_links_get_the_same_page(app, client, swept):
    invoice_id = pick(app, swept)
    revoked, expired = issue(app, swept, invoice_id), issue(app, swept, invoice_id, email=f"x{AT}client.example")
    with session_of(app, swept) as s:
        links = {guests.email_of(services_of(app).keyring, ln): ln for ln in guests.links_of(s, invoice_id)}
        links[f"boss{AT}client.example"].revoked_at = dt.datetime.now(dt.UTC)
        links[f"x{AT}client.example"].expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    answers = [app.test_client().get(p) for p in (revoked, expired, "/g/" + "A" * 43, "/g/short", "/g/review")]
    assert {r.status_code for r in answers} == {404}
    assert len({r.get_data() for r in answers}) == 1
    assert "This link is not valid" in answers[0].get_data(as_text=True)
    assert not any(r.headers.getlist("Set-Cookie") for r in answers)


def test_revocation_and_expiry_end_an_open_guest_session_at_once(app, client, swept):
    invoice_id = pick(app, swept)
    path = invite(client, invoice_id)
    guest = open_as_guest(app, path)
    assert guest.get("/g/review").status_code == 200
    panel = client.get(f"/review/{invoice_id}").get_data(as_text=True)
    link_id = re.search(r"/guests/([0-9a-f-]{36})/revoke", panel).group(1)  # type: ignore[union-attr]
    assert GUEST_EMAIL in panel and "Last used" in panel
    revoked = client.post(f"/review/{invoice_id}/guests/{link_id}/revoke", headers=htmx(client))
    assert revoked.status_code == 200 and "Revoked" in revoked.get_data(as_text=True)
    assert guest.get("/g/review").status_code == 404
    assert guest.get("/g/review/pdf").status_code == 404
    assert guest.get(path).status_code == 404  # the link itself no longer opens
    with session_of(app, swept) as s:
        audit = s.execute(select(AuditEntry).where(AuditEntry.action == "review.guest_link_revoked")).scalar_one()
        assert audit.target_id == link_id

    second = issue(app, swept, invoice_id)
    guest2 = open_as_guest(app, second)
    assert guest2.get("/g/review").status_code == 200
    with session_of(app, swept) as s:
        s.execute(update(GuestLink).where(GuestLink.revoked_at.is_(None))
                  .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert guest2.get("/g/review").status_code == 404


def test_a_guest_session_times_out_after_30_idle_minutes(app, client, swept):
    guest = open_as_guest(app, issue(app, swept, pick(app, swept)))
    assert guest.get("/g/review").status_code == 200
    redis = app.extensions["redis"]
    (key,) = redis.keys("bi:guest-sess:*")
    record = json.loads(redis.get(key))
    record["s"] -= 31 * 60
    redis.set(key, json.dumps(record))
    assert guest.get("/g/review").status_code == 404


def test_an_assigned_guest_approves_attributed_and_audited(app, client, swept):
    invoice_id = pick(app, swept)
    guest = open_as_guest(app, invite(client, invoice_id))
    response = guest_post(guest, "/g/review/approve")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    body = response.get_data(as_text=True)
    assert "Ana Ruiz (guest, ap" in body  # the timeline, out of band
    with session_of(app, swept) as s:
        mine = s.execute(select(Reviewer).where(Reviewer.invoice_id == invoice_id, Reviewer.guest_id.is_not(None))
                         ).scalar_one()
        assert mine.state == "approved" and mine.user_id is None
        event = s.execute(select(Event).where(Event.invoice_id == invoice_id, Event.kind == "approved")).scalar_one()
        assert (event.actor_type, event.actor_name) == ("guest", f"Ana Ruiz (guest, {GUEST_EMAIL})")
        assert event.actor_id == str(mine.guest_id) and event.at is not None
        audit = s.execute(select(AuditEntry).where(AuditEntry.action == "review.approved")).scalar_one()
        assert (audit.actor_type, audit.actor_label) == ("guest", f"Ana Ruiz (guest, {GUEST_EMAIL})")


def test_an_assigned_guest_rejects_with_a_reason(app, client, swept):
    invoice_id = pick(app, swept)
    guest = open_as_guest(app, invite(client, invoice_id))
    refused = guest_post(guest, "/g/review/reject", reason="")
    assert refused.status_code == 422 and "Say why" in refused.get_data(as_text=True)
    done = guest_post(guest, "/g/review/reject", reason="The hours on ticket 42 <b>look</b> doubled")
    assert done.status_code == 200
    with session_of(app, swept) as s:
        assert s.execute(select(ReviewInvoice.state).where(ReviewInvoice.invoice_id == invoice_id)
                         ).scalar_one() == "rejected"
    page = guest.get("/g/review").get_data(as_text=True)
    assert "&lt;b&gt;look&lt;/b&gt;" in page and "<b>look</b>" not in page


def test_a_guest_not_assigned_may_comment_but_not_approve_or_reject(app, client, swept):
    invoice_id = pick(app, swept)
    guest = open_as_guest(app, issue(app, swept, invoice_id))
    page = guest.get("/g/review").get_data(as_text=True)
    assert ">Approve</button>" not in page and "Reject…" not in page
    assert guest_post(guest, "/g/review/approve").status_code == 403
    assert guest_post(guest, "/g/review/reject", reason="no").status_code == 403
    commented = guest_post(guest, "/g/review/comment", text="Please <script>alert(1)</script> check line 3")
    assert commented.status_code == 200
    with session_of(app, swept) as s:
        kinds = s.execute(select(Event.kind, Event.actor_type, Event.actor_name).where(
            Event.invoice_id == invoice_id, Event.actor_type == "guest")).all()
        assert [(k, t) for k, t, _ in kinds] == [("commented", "guest")]
        assert kinds[0][2] == f"Bo Boss (guest, boss{AT}client.example)"
        assert s.execute(select(ReviewInvoice.state).where(ReviewInvoice.invoice_id == invoice_id)
                         ).scalar_one() == "needs_review"
        audit = s.execute(select(AuditEntry).where(AuditEntry.action == "review.commented")).scalar_one()
        assert audit.actor_type == "guest" and "script" not in json.dumps(audit.after)
    shown = guest.get("/g/review").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "<script>alert(1)" not in shown
    assert guest_post(guest, "/g/review/comment", text="  ").status_code == 422


def test_a_guest_downloads_the_pdf(app, client, swept):
    guest = open_as_guest(app, issue(app, swept, pick(app, swept)))
    response = guest.get("/g/review/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")


def test_a_guest_form_without_the_csrf_token_is_refused(app, client, swept):
    guest = open_as_guest(app, invite(client, pick(app, swept)))
    guest.get("/g/review")
    assert guest.post("/g/review/approve", data={}).status_code == 400
    assert guest.post("/g/review/comment", data={"text": "hi", "csrf_token": "forged"}).status_code == 400


GUEST_ENDPOINTS = {"review_guest.open_link", "review_guest.page", "review_guest.pdf", "review_guest.brand_css",
                   "review_guest.logo", "review_guest.comment", "review_guest.approve", "review_guest.reject"}


def _url(rule) -> str:  # type: ignore[no-untyped-def]
    from flask import url_for

    values = {}
    for arg in rule.arguments:
        converter = rule._converters[arg].__class__.__name__  # noqa: SLF001
        values[arg] = 1 if converter == "IntegerConverter" else (uuid.uuid4() if converter == "UUIDConverter" else "x")
    return url_for(rule.endpoint, **values)


def test_every_other_url_answers_a_guest_as_it_answers_a_stranger(app, client, swept):
    invoice_id = pick(app, swept)
    guest = open_as_guest(app, invite(client, invoice_id))
    token = guest_csrf(guest)
    stranger = app.test_client()
    stranger_token = csrf_of(stranger)
    guest_user_token = csrf_of(guest)  # the guest's browser may hold an anonymous user session too
    walked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in GUEST_ENDPOINTS or rule.endpoint.startswith("dev."):
            continue
        with app.test_request_context():
            url = _url(rule).replace("/1", f"/{invoice_id}", 1) if "invoice_id" in rule.arguments else _url(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            with app.app_context():
                reset_limits()
            as_guest = guest.open(url, method=method, data={"csrf_token": guest_user_token},
                                  headers={"X-CSRF-Token": token} if url.startswith("/g/") else {})
            as_stranger = stranger.open(url, method=method, data={"csrf_token": stranger_token})
            assert (as_guest.status_code, as_guest.headers.get("Location")) == \
                   (as_stranger.status_code, as_stranger.headers.get("Location")), (rule.endpoint, method)
            assert as_guest.status_code in (302, 400, 404, 405) or rule.endpoint in (
                "static", "health.healthz", "auth.sign_in", "auth.enter_code", "auth.break_glass", "auth.choose",
            ) or rule.endpoint.startswith(("public_invoices.", "sso.", "auth.", "signup.")), (rule.endpoint, as_guest.status_code)
            walked += 1
    assert walked > 80
    # And what the guest may do still works after the walk.
    assert guest.get("/g/review").status_code == 200


def test_a_signed_in_user_opening_a_guest_link_is_a_guest_there_and_stays_signed_in_elsewhere(app, client, swept):
    invoice_id = pick(app, swept)
    path = invite(client, invoice_id)
    opened = client.get(path)
    assert opened.status_code == 303
    page = client.get("/g/review").get_data(as_text=True)
    assert "Sign out" not in page and not STAFF_URL.search(page)
    staff = client.get(f"/review/{invoice_id}")
    assert staff.status_code == 200 and "Sign out" in staff.get_data(as_text=True)


def test_staff_see_the_links_and_only_managers_invite_or_revoke(app, client, swept):
    invoice_id = pick(app, swept)
    refused = client.post(f"/review/{invoice_id}/guests", data={"email": "nope"}, headers=htmx(client))
    assert refused.status_code == 422 and "does not look like an email" in refused.get_data(as_text=True)
    invite(client, invoice_id)
    with session_of(app, swept) as s:
        reviewer = s.execute(select(Reviewer).where(Reviewer.invoice_id == invoice_id,
                                                    Reviewer.guest_id.is_not(None))).scalar_one()
        assert reviewer.name == f"Ana Ruiz (guest, {GUEST_EMAIL})"
        link = s.execute(select(GuestLink).where(GuestLink.invoice_id == invoice_id)).scalar_one()
        days = (link.expires_at - link.created_at).days
    assert days == 14
    viewer = app.test_client()
    sign_in(viewer, swept, add_user(app, swept, "reviewer"))
    page = viewer.get(f"/review/{invoice_id}").get_data(as_text=True)
    assert GUEST_EMAIL in page and "Invite a guest reviewer" not in page and "/revoke" not in page
    forbidden = viewer.post(f"/review/{invoice_id}/guests/{link.id}/revoke", headers=htmx(viewer))
    assert forbidden.status_code == 403


def test_a_re_issued_link_keeps_the_guest_reviewer(app, client, swept):
    invoice_id = pick(app, swept)
    invite(client, invoice_id)
    second = issue(app, swept, invoice_id, email=GUEST_EMAIL.upper(), name="Ana Ruiz")
    guest = open_as_guest(app, second)
    assert guest_post(guest, "/g/review/approve").status_code == 200


def test_guest_links_are_rate_limited_per_link_and_per_ip(app, client, swept):
    path = issue(app, swept, pick(app, swept))
    visitor = app.test_client()
    statuses = [visitor.get(path).status_code for _ in range(61)]
    assert statuses[:60] == [303] * 60 and statuses[60] == 429
    with app.app_context():
        reset_limits()
    ip_statuses = [visitor.get(f"/g/{'B' * 40}{i:03d}").status_code for i in range(121)]
    assert ip_statuses[:120] == [404] * 120 and ip_statuses[120] == 429


def test_a_guest_comment_goes_through_comments_post_and_mentions_nobody(app, client, swept):
    invoice_id = pick(app, swept)
    guest = open_as_guest(app, invite(client, invoice_id))
    with session_of(app, swept) as s:
        links_before = len(guests.links_of(s, invoice_id))
    said = f"Forwarding to @other{AT}elsewhere.example, see line 2"
    response = guest_post(guest, "/g/review/comment", text=said, mention=f"email:x{AT}y.example",
                          email_mentioned="1", add_reviewers="1")
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body[:300]
    assert f"Ana Ruiz (guest, {GUEST_EMAIL})" in body  # the timeline, out of band
    with session_of(app, swept) as s:
        event = s.execute(select(Event).where(Event.invoice_id == invoice_id, Event.kind == "commented")).scalar_one()
        assert (event.actor_type, event.actor_name) == ("guest", f"Ana Ruiz (guest, {GUEST_EMAIL})")
        [entry] = [e for e in of_invoice(s, services_of(app).keyring, invoice_id) if e.kind == "commented"]
        assert entry.detail == {"text": said, "mentions": [], "emailed": []}
        assert len(guests.links_of(s, invoice_id)) == links_before  # no link minted by a guest
        audit = s.execute(select(AuditEntry).where(AuditEntry.action == "review.commented")).scalar_one()
        assert audit.actor_type == "guest" and audit.after["mentions"] == [] and "Forwarding" not in json.dumps(
            audit.after)
        assert s.execute(text("select count(*) from review_notifications")).scalar() == 0
    assert guest_post(guest, "/g/review/comment", text="x" * 4001).status_code == 422


def test_the_guest_link_lifetime_is_set_on_the_review_settings_page_and_audited(app, client, swept):
    page = client.get("/settings/review/").get_data(as_text=True)
    assert 'id="review-guest-settings"' in page and 'name="days"' in page and 'value="14"' in page
    headers = htmx(client)
    for bad in ("0", "91", "abc", "", "7.5", "-3"):
        refused = client.post("/settings/review/guest-links", data={"days": bad}, headers=headers)
        html = refused.get_data(as_text=True)
        assert refused.status_code == 422, bad
        assert "Enter a whole number of days from 1 to 90." in html and 'aria-invalid="true"' in html
    with session_of(app, swept) as s:
        assert guests.link_days(s, swept.id) == 14
    saved = client.post("/settings/review/guest-links", data={"days": "3"}, headers=headers)
    assert saved.status_code == 200 and "New guest links work for 3 days." in saved.get_data(as_text=True)
    invoice_id = pick(app, swept)
    invite(client, invoice_id)
    with session_of(app, swept) as s:
        link = s.execute(select(GuestLink).where(GuestLink.invoice_id == invoice_id)).scalar_one()
        lifetime = link.expires_at - link.created_at
        assert dt.timedelta(days=3) - dt.timedelta(seconds=5) < lifetime <= dt.timedelta(days=3)
        audit = s.execute(select(AuditEntry).where(AuditEntry.action == "review.guest_link_days_changed")
                          ).scalar_one()
        assert (audit.before, audit.after) == ({"guest_link_days": 14}, {"guest_link_days": 3})
        assert audit.actor_id == str(swept.owner_id)
    again = client.post("/settings/review/guest-links", data={"days": "3"}, headers=headers)
    assert "Nothing changed." in again.get_data(as_text=True)
    plain = client.post("/settings/review/guest-links", data={"days": "30", "csrf_token": csrf_of(client)})
    assert plain.status_code == 303 and plain.headers["Location"].endswith("/settings/review/")


def test_only_review_rules_may_set_the_guest_link_lifetime(app, client, swept):
    sign_in(client, swept, add_user(app, swept, "reviewer"))
    assert client.post("/settings/review/guest-links", data={"days": "5"}, headers=htmx(client)).status_code == 403
    with session_of(app, swept) as s:
        assert guests.link_days(s, swept.id) == 14
