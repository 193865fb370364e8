"""Comments on an invoice's review: the box under the activity, @mentions (the popup filtered on the server, never a
current reviewer), the two options by permission (re-checked on the server), mentioned members added as reviewers
and mentioned people mailed only when ticked, markup shown inert, mentioned users notified (the header's count, the
invoice unread for them), and the comment an event and an audit row without its text."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.jobs.queue import get_queue
from app.review import inbox, reads
from app.review.events import of_invoice
from app.review.guest_models import GuestLink
from app.review.models import Notification
from app.services import services_of
from app.users.models import User
from tests.conftest import sign_in
from tests.integration.invoice_helpers import connected_tenant, htmx, sim_knobs_at_defaults  # noqa: F401
from tests.integration.signin_helpers import outbox
from tests.integration.test_review_reviewers import (
    FAITH,
    JORDAN,
    LAURA,
    add_member_user,
    into_review,
    open_invoice_routed_to,
    reviewer_rows,
    seed,
    session_of,
)

AT = chr(64)
GUEST = f"ap{AT}client.example"


@pytest.fixture()
def tenant(client, make_tenant, sim, redis_conn):  # type: ignore[no-untyped-def]
    return connected_tenant(client, make_tenant, sim, name="Comments Co")


@pytest.fixture()
def seeded(app, tenant, sim):  # type: ignore[no-untyped-def]
    """An invoice in review routed to Jordan Morales then Faith Nguyen; Laura Martin known from another one."""
    invoice_id = open_invoice_routed_to(sim, JORDAN, FAITH)
    into_review(app, tenant, invoice_id, open_invoice_routed_to(sim, LAURA))
    assert seed(app, tenant).invoices_seeded == 2
    return invoice_id


@pytest.fixture()
def brian(app, tenant):  # type: ignore[no-untyped-def]
    return add_member_user(app, tenant, 143, "Brian Chen")


def post(client, invoice_id: int, text: str, *mentions: str, **options: str):  # type: ignore[no-untyped-def]
    data = {"text": text, "mention": list(mentions), **options}
    return client.post(f"/review/{invoice_id}/comments", data=data, headers=htmx(client))


def run_mail(app, redis_conn) -> None:  # type: ignore[no-untyped-def]
    queue = get_queue(redis_conn, "mail")
    with app.app_context():
        SimpleWorker([queue], connection=redis_conn, serializer=queue.serializer).work(burst=True)


def mail_jobs(redis_conn) -> int:  # type: ignore[no-untyped-def]
    return get_queue(redis_conn, "mail").count


def comment_events(app, tenant, invoice_id: int):  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as session:
        return [e for e in of_invoice(session, services_of(app).keyring, invoice_id) if e.kind == "commented"]


def user_of_role(app, tenant, role: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    return add_member_user(app, tenant, 900 + len(role), f"{role.title()} Person", role=role)


# -- the popup ---------------------------------------------------------------------------------------------------


def test_the_popup_offers_people_filtered_as_you_type_and_never_a_current_reviewer(app, client, tenant, seeded,
                                                                                    brian):
    url = f"/review/{seeded}/comments/people"
    everyone = client.get(url, query_string={"q": ""}).get_json()
    keys = {p["key"] for p in everyone}
    assert f"user:{brian}" in keys and f"member:{LAURA}" in keys
    assert f"member:{JORDAN}" not in keys and f"member:{FAITH}" not in keys  # reviewers of this invoice
    assert not any(p["name"] in ("Jordan Morales", "Faith Nguyen") for p in everyone)
    narrowed = client.get(url, query_string={"q": "bri"}).get_json()
    assert [p["name"] for p in narrowed] == ["Brian Chen"]
    assert client.get(url, query_string={"q": "LAUR"}).get_json()[0]["key"] == f"member:{LAURA}"
    typed = client.get(url, query_string={"q": GUEST}).get_json()
    assert typed == [{"key": f"email:{GUEST}", "name": GUEST, "detail": "No account: gets a guest link"}]


def test_a_person_added_as_reviewer_leaves_the_popup(app, client, tenant, seeded, brian):
    client.post(f"/review/{seeded}/reviewers", data={"who": f"user:{brian}"}, headers=htmx(client))
    names = [p["name"] for p in client.get(f"/review/{seeded}/comments/people?q=chen").get_json()]
    assert names == []


# -- the box and its options by permission ----------------------------------------------------------------------


@pytest.mark.parametrize(("role", "add_box", "email_box"), [
    ("owner", True, True), ("billing_manager", True, True), ("reviewer", False, False)])
def test_the_options_appear_only_with_their_permission(app, client, tenant, seeded, role, add_box, email_box):
    if role != "owner":
        sign_in(client, tenant, user_of_role(app, tenant, role))
    html = client.get(f"/review/{seeded}").get_data(as_text=True)
    box = html[html.index('id="review-comment-box"'):]
    assert 'name="text"' in box and "Enter sends, Shift+Enter adds a line" in box
    assert ('name="add_reviewers" value="1" checked' in box) is add_box
    assert ('name="email_mentioned" value="1">' in box) is email_box
    assert "js/mentions.js" in box


def test_a_viewer_reads_comments_but_has_no_box_and_cannot_post(app, client, tenant, seeded):
    sign_in(client, tenant, user_of_role(app, tenant, "viewer"))
    html = client.get(f"/review/{seeded}").get_data(as_text=True)
    assert 'name="text"' not in html and "can read the comments but not add one" in html
    assert post(client, seeded, "hello").status_code == 403


# -- posting ------------------------------------------------------------------------------------------------------


def test_a_comment_is_an_event_and_an_audit_row_without_its_text(app, client, tenant, seeded, brian):
    response = post(client, seeded, "Hours look high on @Brian Chen's ticket", f"user:{brian}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    assert '<section id="review-comment-box"' in html[:400] and "Comment posted." in html
    assert re.search(r'<section id="review-timeline" [^>]*hx-swap-oob="true"', html)
    [ev] = comment_events(app, tenant, seeded)
    assert ev.actor.id == str(tenant.owner_id)
    assert ev.detail == {"text": "Hours look high on @Brian Chen's ticket", "emailed": [],
                         "mentions": [{"type": "user", "ref": str(brian), "name": "Brian Chen"}]}
    with session_of(app, tenant) as session:
        [audit] = session.execute(select(AuditEntry).where(AuditEntry.action == "review.commented")).scalars()
        assert audit.target_id == str(seeded) and audit.actor_id == str(tenant.owner_id)
        stored = json.dumps([audit.before, audit.after])
    assert "Hours look high" not in stored and str(ev.id) in stored and str(brian) in stored


def test_the_timeline_draws_the_mention_as_a_chip_and_my_comment_as_mine(app, client, tenant, seeded, brian):
    html = post(client, seeded, "Ask @Brian Chen please", f"user:{brian}").get_data(as_text=True)
    assert re.search(r'<li class="tl-item tl-ours tl-comment tl-mine">', html)
    assert 'Ask <span class="mention-chip mention-user">@Brian Chen</span> please' in html
    sign_in(client, tenant, brian)
    page = client.get(f"/review/{seeded}").get_data(as_text=True)
    assert '<li class="tl-item tl-ours tl-comment">' in page  # someone else's, for Brian


def test_a_comment_containing_markup_is_shown_inert(app, client, tenant, seeded):
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)"> & "quotes"'
    html = post(client, seeded, evil).get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&#34;alert(2)&#34;&gt; &amp;" in html
    page = client.get(f"/review/{seeded}").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert comment_events(app, tenant, seeded)[0].detail["text"] == evil  # stored as typed, as text


@pytest.mark.parametrize(("text", "mention", "message"), [
    ("   ", None, "Write a comment first."),
    ("x" * 4001, None, "at most 4,000 characters"),
    ("hi", "user:" + str(uuid.UUID(int=7)), "not an active user"),
    ("hi", "member:99999", "not known here"),
    ("hi", "<b>bold</b>", "Pick mentioned people from the list."),
    ("hi", "email:not-an-address", "is not an email address"),
])
def test_a_bad_comment_is_refused_beside_the_box_and_nothing_is_kept(app, client, tenant, seeded, text, mention,
                                                                     message):
    response = post(client, seeded, text, *([mention] if mention else []))
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and message in html and 'role="alert"' in html
    assert "<b>bold" not in html
    assert comment_events(app, tenant, seeded) == []


def test_comment_routes_answer_404_for_an_invoice_not_in_review_or_another_workspaces(app, client, tenant, seeded,
                                                                                      make_tenant, sim):
    assert post(client, 987654, "hi").status_code == 404
    assert client.get("/review/987654/comments/people").status_code == 404
    other = connected_tenant(client, make_tenant, sim, name="Other Co")
    sign_in(client, other)
    assert post(client, seeded, "hi").status_code == 404
    assert comment_events(app, tenant, seeded) == []


# -- add as reviewers -------------------------------------------------------------------------------------------


def test_mentioned_members_become_reviewers_only_when_ticked(app, client, tenant, seeded, brian):
    post(client, seeded, "FYI @Brian Chen", f"user:{brian}")  # box not ticked
    assert [r.name for r in reviewer_rows(app, tenant, seeded)] == ["Jordan Morales", "Faith Nguyen"]
    html = post(client, seeded, "Please check @Brian Chen @Laura Martin", f"user:{brian}", f"member:{LAURA}",
                add_reviewers="1").get_data(as_text=True)
    rows = reviewer_rows(app, tenant, seeded)
    assert [(r.name, r.source, r.state) for r in rows[2:]] == [("Brian Chen", "mention", "waiting"),
                                                              ("Laura Martin", "mention", "waiting")]
    assert "Added as reviewers: Brian Chen, Laura Martin." in html
    assert 'id="review-reviewers" class="card review-reviewers" aria-labelledby="review-reviewers-title" ' \
           'hx-swap-oob="true"' in html and 'id="review-decision"' in html


def test_adding_reviewers_needs_manage_reviewers_whatever_the_form_says(app, client, tenant, seeded, brian):
    sign_in(client, tenant, user_of_role(app, tenant, "reviewer"))
    assert post(client, seeded, "@Brian Chen", f"user:{brian}", add_reviewers="1").status_code == 200
    assert [r.name for r in reviewer_rows(app, tenant, seeded)] == ["Jordan Morales", "Faith Nguyen"]
    assert len(comment_events(app, tenant, seeded)) == 1


# -- email --------------------------------------------------------------------------------------------------------


def test_mentioned_people_are_mailed_only_when_ticked(app, client, tenant, seeded, brian, redis_conn):
    redis_conn.delete("bi:dev-outbox")
    post(client, seeded, "no mail @Brian Chen", f"user:{brian}")
    assert mail_jobs(redis_conn) == 0
    html = post(client, seeded, "Check <b>this</b> & that, @Brian Chen", f"user:{brian}",
                email_mentioned="1").get_data(as_text=True)
    assert "Also sent by email to Brian Chen" in html and "Emailing Brian Chen." in html
    assert mail_jobs(redis_conn) == 1
    run_mail(app, redis_conn)
    [message] = outbox(app)
    with session_of(app, tenant) as session:
        address = session.get(User, brian).email
    assert message["to"] == address and "mentioned you on invoice" in message["subject"]
    assert "Check <b>this</b> & that, @Brian Chen" in message["text"]  # the text part is plain text
    assert f"/review/{seeded}" in message["text"] and f"/review/{seeded}" in message["html"]
    assert "Check &lt;b&gt;this&lt;/b&gt; &amp; that, <strong" in message["html"] and "<b>this" not in message["html"]


def test_mailing_needs_send_emails_whatever_the_form_says(app, client, tenant, seeded, brian, redis_conn):
    sign_in(client, tenant, user_of_role(app, tenant, "reviewer"))
    html = post(client, seeded, "@Brian Chen", f"user:{brian}", email_mentioned="1").get_data(as_text=True)
    assert "Also sent by email" not in html and mail_jobs(redis_conn) == 0
    assert comment_events(app, tenant, seeded)[0].detail["emailed"] == []


def test_a_refused_comment_queues_no_mail(app, client, tenant, seeded, brian, redis_conn):
    assert post(client, seeded, "", f"user:{brian}", email_mentioned="1").status_code == 422
    assert mail_jobs(redis_conn) == 0


def test_an_address_typed_after_at_is_a_mention_of_that_address(app, client, tenant, seeded, brian):
    with session_of(app, tenant) as session:
        address = session.get(User, brian).email
    post(client, seeded, f"Asking @{GUEST} and @{address.upper()} too")
    [ev] = comment_events(app, tenant, seeded)
    assert ev.detail["mentions"] == [{"type": "email", "ref": GUEST, "name": GUEST},
                                     {"type": "user", "ref": str(brian), "name": "Brian Chen"}]


# -- notifications ---------------------------------------------------------------------------------------------


def test_mentioned_users_are_notified_and_the_invoice_turns_unread_for_them(app, client, tenant, seeded, brian):
    with session_of(app, tenant) as session:
        reads.mark_read(session, tenant.id, seeded, brian)
    sign_in(client, tenant, brian)
    assert 'class="notif-count"' not in client.get("/review/").get_data(as_text=True)
    sign_in(client, tenant)
    post(client, seeded, "@Brian Chen have a look", f"user:{brian}")
    with session_of(app, tenant) as session:
        [note] = session.execute(select(Notification)).scalars()
        assert (note.user_id, note.invoice_id, note.read_at) == (brian, seeded, None)
        unread = inbox.load(session, None, services_of(app).keyring, inbox.InboxQuery(unread=True), brian)
        assert seeded in [row.invoice_id for row in unread.rows]
    sign_in(client, tenant, brian)
    header = client.get("/review/").get_data(as_text=True)
    assert '<span class="notif-count">1</span>' in header and 'aria-label="Notifications: 1 unread"' in header
    listed = client.get("/review/notifications").get_data(as_text=True)
    assert "Olive Owner mentioned you on" in listed and "notif-unread" in listed
    opened = client.post(f"/review/notifications/{note.id}/open", headers={"X-CSRF-Token": htmx(client)["X-CSRF-Token"]})
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/review/{seeded}")
    client.get(f"/review/{seeded}")
    assert 'class="notif-count"' not in client.get("/review/").get_data(as_text=True)


def test_opening_the_invoice_reads_its_notifications_and_mark_all_read_reads_the_rest(app, client, tenant, seeded,
                                                                                     brian):
    post(client, seeded, "one @Brian Chen", f"user:{brian}")
    post(client, seeded, "two @Brian Chen", f"user:{brian}")
    sign_in(client, tenant, brian)
    assert '<span class="notif-count">2</span>' in client.get("/review/").get_data(as_text=True)
    client.get(f"/review/{seeded}")
    assert 'class="notif-count"' not in client.get("/review/").get_data(as_text=True)
    sign_in(client, tenant)
    post(client, seeded, "three @Brian Chen", f"user:{brian}")
    sign_in(client, tenant, brian)
    assert client.post("/review/notifications/read", headers=htmx(client)).status_code == 302
    assert 'class="notif-count"' not in client.get("/review/").get_data(as_text=True)


def test_a_notification_of_someone_else_cannot_be_opened(app, client, tenant, seeded, brian):
    post(client, seeded, "@Brian Chen", f"user:{brian}")
    with session_of(app, tenant) as session:
        [note] = session.execute(select(Notification)).scalars()
    assert client.post(f"/review/notifications/{note.id}/open", headers=htmx(client)).status_code == 404


def test_i_am_not_notified_of_my_own_mention(app, client, tenant, seeded):
    post(client, seeded, "note to self", f"user:{tenant.owner_id}")
    with session_of(app, tenant) as session:
        assert session.execute(select(Notification)).scalars().all() == []


# -- guest links for people without an account -------------------------------------------------------------------

GUEST_PATH = re.compile(r"/g/([A-Za-z0-9_-]{43})")


def guest_links(app, tenant, invoice_id: int):  # type: ignore[no-untyped-def]
    with session_of(app, tenant) as session:
        return session.execute(select(GuestLink).where(GuestLink.invoice_id == invoice_id)).scalars().all()


def test_mentioning_an_address_without_an_account_makes_a_guest_link_shown_once(app, client, tenant, seeded,
                                                                              redis_conn):
    response = post(client, seeded, f"Can you confirm the hours, @{GUEST}?", f"email:{GUEST}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    box = html[:html.index('id="review-timeline"')]
    [token] = set(GUEST_PATH.findall(box))  # in the comment box, with Copy
    assert re.search(rf'data-copy="[^"]*/g/{token}"', box)
    assert "not emailed: copy it to them" in box and mail_jobs(redis_conn) == 0
    [link] = guest_links(app, tenant, seeded)
    assert link.token_hash == hashlib.sha256(token.encode()).digest()
    assert link.revoked_at is None and link.created_by == tenant.owner_id
    assert re.search(r'<section id="review-guest-links" [^>]*hx-swap-oob="true"', html)
    panel = html[html.index('id="review-guest-links"'):]
    assert GUEST in panel and "Last used never" in panel and token not in panel  # listed, without the secret
    page = client.get(f"/review/{seeded}").get_data(as_text=True)
    assert token not in page and GUEST in page[page.index('id="review-guest-links"'):]  # shown once only
    with session_of(app, tenant) as session:
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "review.guest_link_created")
                                ).scalar_one()
        assert audit.actor_id == str(tenant.owner_id) and token not in json.dumps([audit.before, audit.after])
    guest = app.test_client()
    opened = guest.get(f"/g/{token}")
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/g/review")
    assert "Can you confirm the hours" in guest.get("/g/review").get_data(as_text=True)


def test_a_mailed_guest_gets_a_link_that_opens_the_guest_review(app, client, tenant, seeded, redis_conn):
    redis_conn.delete("bi:dev-outbox")
    html = post(client, seeded, f"Please approve, @{GUEST}", f"email:{GUEST}",
                email_mentioned="1").get_data(as_text=True)
    assert f"Emailing {GUEST}." in html and not GUEST_PATH.search(html[:html.index('id="review-timeline"')])
    assert guest_links(app, tenant, seeded) == []  # the mail job makes it: the URL never sits in the queue
    assert mail_jobs(redis_conn) == 1
    run_mail(app, redis_conn)
    [message] = outbox(app)
    assert message["to"] == GUEST and "mentioned you on invoice" in message["subject"]
    [token] = set(GUEST_PATH.findall(message["text"]))
    assert f"/g/{token}" in message["html"] and f"/review/{seeded}" not in message["text"]
    [link] = guest_links(app, tenant, seeded)
    assert link.token_hash == hashlib.sha256(token.encode()).digest()
    listed = client.get(f"/review/{seeded}").get_data(as_text=True)
    assert GUEST in listed[listed.index('id="review-guest-links"'):] and token not in listed
    guest = app.test_client()
    opened = guest.get(f"/g/{token}")
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/g/review")
    page = guest.get("/g/review")
    assert page.status_code == 200 and "Please approve" in page.get_data(as_text=True)


def test_unticked_email_sends_no_mail_to_a_guest_and_the_link_is_there_to_copy(app, client, tenant, seeded,
                                                                              redis_conn):
    redis_conn.delete("bi:dev-outbox")
    html = post(client, seeded, f"FYI @{GUEST}").get_data(as_text=True)  # typed, not picked: still a mention
    assert GUEST_PATH.search(html) and "Emailing" not in html
    run_mail(app, redis_conn)
    assert mail_jobs(redis_conn) == 0 and outbox(app) == []
    assert len(guest_links(app, tenant, seeded)) == 1


def test_a_connectwise_member_without_a_user_is_said_to_be_told_by_nobody(app, client, tenant, seeded, redis_conn):
    offered = client.get(f"/review/{seeded}/comments/people", query_string={"q": "laur"}).get_json()
    assert offered == [{"key": f"member:{LAURA}", "name": "Laura Martin",
                        "detail": "ConnectWise member, no account: not notified or emailed"}]
    html = post(client, seeded, "Ask @Laura Martin", f"member:{LAURA}", email_mentioned="1").get_data(as_text=True)
    assert ("Laura Martin has no account here and we keep no ConnectWise member&#39;s email address, so nobody told "
            "them: mention their email address to give them a guest link.") in html
    assert "Emailing" not in html and mail_jobs(redis_conn) == 0 and guest_links(app, tenant, seeded) == []
    with session_of(app, tenant) as session:
        assert session.execute(select(Notification)).scalars().all() == []
