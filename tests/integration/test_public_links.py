"""Public links: token hashed at rest, /i/<token> renders live from ConnectWise with only a usage row stored,
the same "not valid" page for unknown / revoked / expired links, 503 on a ConnectWise outage, rate limits, CLI."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update

from app.audit.models import AuditEntry
from app.invoices.models import LinkView, PublicLink
from app.invoices.retention import purge_expired_views_rows
from app.security.limits import reset_limits
from app.tenancy import tenant_session
from tests.conftest import sign_in
from tests.integration.invoice_helpers import (  # noqa: F401 (fixtures)
    TOKEN_IN_URL,
    add_user,
    connected_tenant,
    htmx,
    make_link,
    rebuild_afterwards,
    sim_knobs_at_defaults,
)

INVOICE = 3  # the simulator's invoice with products and time (cases: below_cost_product)


@pytest.fixture(autouse=True)
def _fresh_limits(app):  # type: ignore[no-untyped-def]
    with app.app_context():
        reset_limits()
    yield


def _views(app, tenant_id) -> list[LinkView]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        return list(session.execute(select(LinkView).order_by(LinkView.id)).scalars())


def _link_row(app, tenant_id) -> PublicLink:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as session:
        return session.execute(select(PublicLink)).scalars().one()


def _all_database_text(owner_engine) -> str:  # type: ignore[no-untyped-def]
    """Every row of every table in the schema, as JSON text (read as the owner, so RLS hides nothing)."""
    with owner_engine.connect() as conn:
        tables = [r[0] for r in conn.execute(text("select tablename from pg_tables where schemaname = 'public'"))]
        chunks = []
        for table in tables:
            rows = conn.execute(text(f"select row_to_json(t)::text from {table} t")).scalars().all()  # noqa: S608
            chunks.extend(rows)
    return "\n".join(chunks)


def test_a_new_link_is_shown_once_and_only_its_hash_is_stored(app, client, make_tenant, sim, owner_engine):
    t = connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    assert len(token) >= 43  # 32 random bytes, URL-safe base64: 256 bits
    row = _link_row(app, t.id)
    assert bytes(row.token_hash) == hashlib.sha256(token.encode()).digest()
    assert row.invoice_id == INVOICE and row.expires_at is None and row.revoked_at is None
    assert token not in _all_database_text(owner_engine)
    page = client.get(f"/invoices/{INVOICE}").get_data(as_text=True)
    assert token not in page and "Not viewed yet" in page  # listed, never shown again
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        audit = session.execute(select(AuditEntry).where(AuditEntry.action == "invoices.public_link_created")).scalar_one()
    assert audit.after["invoice_id"] == INVOICE and token not in str(audit.after)


def test_the_public_page_renders_the_branded_invoice_without_app_chrome_and_is_not_indexed(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    visitor = app.test_client()
    response = visitor.get(f"/i/{token}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["X-Robots-Tag"].startswith("noindex")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response.headers["Cache-Control"]
    assert '<meta name="robots" content="noindex' in html
    assert "INV-10003" in html and "bi-invoice" in html
    assert "mainnav" not in html and "Sign out" not in html  # its own layout, no app navigation
    assert f'href="/i/{token}/pdf"' in html and f"/i/{token}/brand.css" in html
    css = visitor.get(f"/i/{token}/brand.css")
    assert css.status_code == 200 and css.mimetype == "text/css" and "--bi-brand" in css.get_data(as_text=True)
    assert "<script>" not in html.split("</head>")[1]


def test_each_client_view_records_only_usage_and_stamps_the_link(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    visitor = app.test_client()
    assert visitor.get(f"/i/{token}").status_code == 200
    assert visitor.get(f"/i/{token}").status_code == 200
    views = _views(app, t.id)
    total = Decimal(str(sim.state.data["invoices"].get(INVOICE)["total"]))
    assert [(v.kind, v.viewer, v.invoice_id) for v in views] == [("page", "client", INVOICE)] * 2
    assert all(v.total == total for v in views)
    link = _link_row(app, t.id)
    assert link.view_count == 2 and link.last_viewed_at is not None
    assert views[0].link_id == link.id


def test_staff_opening_their_own_link_is_a_staff_preview_and_does_not_count_as_a_client_view(app, client, make_tenant,
                                                                                          sim):
    t = connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    assert client.get(f"/i/{token}").status_code == 200  # the signed-in owner
    views = _views(app, t.id)
    assert [(v.kind, v.viewer) for v in views] == [("page", "staff")]
    assert _link_row(app, t.id).last_viewed_at is None


def test_the_public_pdf_is_an_attachment_named_after_the_invoice_and_recorded(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    response = app.test_client().get(f"/i/{token}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "Invoice-INV-10003.pdf" in disposition
    assert response.headers["X-Robots-Tag"].startswith("noindex")
    assert [(v.kind, v.viewer) for v in _views(app, t.id)] == [("pdf", "client")]


def test_after_public_renders_no_invoice_content_exists_anywhere_in_the_database(app, client, make_tenant, sim,
                                                                               owner_engine):
    from app.connectwise.tenant_client import tenant_client
    from app.invoices.service import reconstruct

    t = connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    visitor = app.test_client()
    assert visitor.get(f"/i/{token}").status_code == 200
    assert visitor.get(f"/i/{token}/pdf").status_code == 200
    # What the invoice says, read the same way the page read it.
    with app.app_context(), tenant_session(t.id, app.extensions["session_factory"]) as session:
        with tenant_client(session, app.extensions["keyring"], app.config["BI"], app.extensions["redis"]) as cw:
            doc = reconstruct(cw, INVOICE)
    content = {doc.number, doc.company_name, doc.bill_to.name, *doc.bill_to.address, doc.po_number, doc.top_comment}
    content |= {line.description for section in doc.sections for line in section.lines}
    content |= {entry.notes for group in doc.time_detail for entry in group.entries}
    content = {c for c in content if c and len(c) >= 5}
    assert len(content) >= 5, content
    dump = _all_database_text(owner_engine)
    leaked = sorted(c for c in content if c in dump)
    assert leaked == []
    assert _views(app, t.id)  # the usage rows are there, and that is all


def test_unknown_revoked_and_expired_links_get_the_same_not_valid_page(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    revoked, expired, live = make_link(client, INVOICE), make_link(client, INVOICE, "3"), make_link(client, INVOICE)
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        session.execute(update(PublicLink).where(PublicLink.token_hash == hashlib.sha256(expired.encode()).digest())
                        .values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
        link_id = session.execute(select(PublicLink.id).where(
            PublicLink.token_hash == hashlib.sha256(revoked.encode()).digest())).scalar_one()
    response = client.post(f"/invoices/{INVOICE}/links/{link_id}/revoke", headers=htmx(client))
    assert response.status_code == 200 and "Revoked" in response.get_data(as_text=True)
    visitor = app.test_client()
    unknown = visitor.get("/i/" + "A" * 43)
    malformed = visitor.get("/i/not-a-token")
    gone_revoked, gone_expired = visitor.get(f"/i/{revoked}"), visitor.get(f"/i/{expired}")
    assert (unknown.status_code, malformed.status_code) == (404, 404)
    assert (gone_revoked.status_code, gone_expired.status_code) == (410, 410)
    bodies = {r.get_data(as_text=True) for r in (unknown, malformed, gone_revoked, gone_expired)}
    assert len(bodies) == 1 and "This link is not valid" in bodies.pop()
    assert visitor.get(f"/i/{revoked}/pdf").status_code == 410
    assert visitor.get(f"/i/{revoked}/brand.css").status_code == 410
    assert visitor.get(f"/i/{live}").status_code == 200
    assert gone_revoked.headers["X-Robots-Tag"].startswith("noindex")
    assert not [v for v in _views(app, t.id) if v.link_id == link_id]


def test_revoke_all_ends_every_link_of_the_invoice_and_is_audited(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    tokens = [make_link(client, INVOICE) for _ in range(3)]
    other = make_link(client, 4)
    html = client.post(f"/invoices/{INVOICE}/links/revoke-all", headers=htmx(client)).get_data(as_text=True)
    assert html.count("Revoked") == 3
    visitor = app.test_client()
    assert all(visitor.get(f"/i/{tok}").status_code == 410 for tok in tokens)
    assert visitor.get(f"/i/{other}").status_code == 200
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        entry = session.execute(select(AuditEntry).where(
            AuditEntry.action == "invoices.public_links_revoked_all")).scalar_one()
    assert entry.after["revoked"] == 3 and entry.source_ip and entry.actor_id == str(t.owner_id)


def test_a_link_from_another_tenant_cannot_be_revoked(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim, "Tenant A")
    token = make_link(client, INVOICE)
    other = app.test_client()
    connected_tenant(other, make_tenant, sim, "Tenant B")
    with app.app_context():
        from app.invoices.links import hash_token

        session = app.extensions["session_factory"]()
        row = session.execute(text("select link_id from bi_public_link_lookup(:h)"), {"h": hash_token(token)}).one()
        session.close()
    response = other.post(f"/invoices/{INVOICE}/links/{row.link_id}/revoke", headers=htmx(other))
    assert response.status_code == 404
    assert app.test_client().get(f"/i/{token}").status_code == 200


def test_viewers_see_invoices_but_cannot_make_or_revoke_links(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    viewer = add_user(app, t, "viewer")
    other = app.test_client()
    sign_in(other, t, viewer)
    page = other.get(f"/invoices/{INVOICE}")
    assert page.status_code == 200 and "Public links" not in page.get_data(as_text=True)
    assert other.post(f"/invoices/{INVOICE}/links", headers=htmx(other)).status_code == 403
    assert other.post(f"/invoices/{INVOICE}/links/revoke-all", headers=htmx(other)).status_code == 403


def test_expiry_must_be_a_sensible_number_of_days(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    for bad in ("0", "-3", "abc", "400"):
        response = client.post(f"/invoices/{INVOICE}/links", data={"expires_days": bad}, headers=htmx(client))
        assert response.status_code == 422
        assert "Expiry must" in response.get_data(as_text=True)
    token = make_link(client, INVOICE, "7")
    assert app.test_client().get(f"/i/{token}").status_code == 200


@pytest.mark.parametrize("fault", [
    {"error_rate": 1.0, "error_status": 503},
    {"error_rate": 1.0, "error_status": 500},
    {"malformed_next": 20},
])
def test_a_connectwise_outage_answers_503_try_again_never_a_stack_trace(app, client, make_tenant, sim, fault):
    t = connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    sim.configure(**fault)
    visitor = app.test_client()
    for path in (f"/i/{token}", f"/i/{token}/pdf"):
        response = visitor.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == 503
        assert "Temporarily unavailable" in html and "try again" in html
        assert "Traceback" not in html and "ConnectWise answered" not in html
        assert response.headers["Retry-After"]
    assert _views(app, t.id) == []
    sim.configure(error_rate=0.0, malformed_next=0)
    assert visitor.get(f"/i/{token}").status_code == 200


def test_connectwise_text_is_escaped_on_the_public_page(app, client, make_tenant, fresh_sim, request):
    rebuild_afterwards(request, fresh_sim)
    connected_tenant(client, make_tenant, fresh_sim)
    invoices = fresh_sim.state.data["invoices"]
    invoice = invoices.get(INVOICE)
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    invoices.set_fields(INVOICE, {"topComment": evil, "customerPO": evil,
                                  "billToCompany": {**invoice["billToCompany"], "name": evil},
                                  "company": {**invoice["company"], "name": evil}})
    token = make_link(client, INVOICE)
    html = app.test_client().get(f"/i/{token}").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert" in html


def test_each_render_reads_connectwise_again_once_its_short_cache_has_expired(app, client, make_tenant, fresh_sim,
                                                                           redis_conn, request):
    rebuild_afterwards(request, fresh_sim)
    connected_tenant(client, make_tenant, fresh_sim)
    token = make_link(client, INVOICE)
    visitor = app.test_client()
    assert visitor.get(f"/i/{token}").status_code == 200
    fresh_sim.state.data["invoices"].set_fields(INVOICE, {"topComment": "Changed in ConnectWise a moment ago"})
    for key in redis_conn.scan_iter("bi:cw:cache:*"):  # what the cache TTL does, without waiting for it
        redis_conn.delete(key)
    before = len(fresh_sim.requests)
    assert "Changed in ConnectWise a moment ago" in visitor.get(f"/i/{token}").get_data(as_text=True)
    paths = [r.path for r in fresh_sim.requests[before:]]
    assert any(p.endswith(f"/finance/invoices/{INVOICE}") for p in paths)
    assert not any("companyinfo" in p for p in paths)  # the API base is remembered, not rediscovered per view


def test_public_links_are_rate_limited_per_token_and_per_ip(app, client, make_tenant, sim):
    connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    visitor = app.test_client()
    statuses = [visitor.get(f"/i/{token}/pdf" if i % 10 == 9 else f"/i/{token}").status_code for i in range(61)]
    assert statuses[:60] == [200] * 60 and statuses[60] == 429
    limited = visitor.get(f"/i/{token}")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.headers["X-Robots-Tag"].startswith("noindex") and limited.headers["Referrer-Policy"] == "no-referrer"
    with app.app_context():
        reset_limits()
    ip_statuses = [visitor.get(f"/i/{'B' * 40}{i:03d}").status_code for i in range(121)]
    assert ip_statuses[:120] == [404] * 120 and ip_statuses[120] == 429
    other_ip = app.test_client().get(f"/i/{'C' * 43}", environ_overrides={"REMOTE_ADDR": "203.0.113.9"})
    assert other_ip.status_code == 404


def test_the_cli_prints_a_working_public_url_with_an_expiry(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    result = app.test_cli_runner().invoke(args=["invoices", "link", str(t.id), str(INVOICE), "--expires", "7"])
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert url.startswith(app.config["BI"].BASE_URL.rstrip("/") + "/i/")
    token = TOKEN_IN_URL.search(url).group(1)
    assert app.test_client().get(f"/i/{token}").status_code == 200
    link = _link_row(app, t.id)
    assert timedelta(days=6, hours=23) < link.expires_at - datetime.now(UTC) <= timedelta(days=7)
    missing = app.test_cli_runner().invoke(args=["invoices", "link", str(t.id), "99999"])
    assert missing.exit_code != 0 and "no invoice 99999" in missing.output
    bad = app.test_cli_runner().invoke(args=["invoices", "link", "not-a-tenant", "3"])
    assert bad.exit_code != 0 and "UUID" in bad.output


def test_the_cli_prints_the_invoices_stable_link_the_app_copies_too(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["invoices", "link", str(t.id), str(INVOICE)])
    assert first.exit_code == 0, first.output
    url = first.output.strip()
    assert TOKEN_IN_URL.search(url) and app.test_client().get(url[url.index("/i/"):]).status_code == 200
    again = runner.invoke(args=["invoices", "link", str(t.id), str(INVOICE)])
    assert again.output.strip() == url  # not a new link per run
    copied = client.post(f"/invoices/{INVOICE}/links", data={"compact": "1"}, headers=htmx(client))
    assert copied.status_code == 200 and url in copied.get_data(as_text=True)  # "Copy public link" agrees
    link = _link_row(app, t.id)  # one link, kept so it can be copied again
    assert link.token_enc is not None and link.expires_at is None
    # An expiring one is an extra link, copyable from the links card too; the stable link stays the one printed.
    extra = runner.invoke(args=["invoices", "link", str(t.id), str(INVOICE), "--expires", "3"])
    assert extra.exit_code == 0 and extra.output.strip() != url
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        rows = session.execute(select(PublicLink).order_by(PublicLink.created_at)).scalars().all()
        assert [r.token_enc is not None for r in rows] == [True, True] and rows[1].expires_at is not None
    assert runner.invoke(args=["invoices", "link", str(t.id), str(INVOICE)]).output.strip() == url
    # Revoked in the app: the next run makes the fresh stable link the app would.
    assert client.post(f"/invoices/{INVOICE}/links/{link.id}/revoke", headers=htmx(client)).status_code == 200
    fresh = runner.invoke(args=["invoices", "link", str(t.id), str(INVOICE)]).output.strip()
    assert fresh != url and app.test_client().get(url[url.index("/i/"):]).status_code == 410  # the old one is gone
    assert fresh in client.post(f"/invoices/{INVOICE}/links", data={"compact": "1"},
                                headers=htmx(client)).get_data(as_text=True)


def test_link_views_are_append_only_for_the_app_and_purged_after_90_days(app, make_tenant, owner_engine):
    from sqlalchemy.exc import DBAPIError

    t = make_tenant()
    now = datetime.now(UTC)
    with tenant_session(t.id, app.extensions["session_factory"]) as session:
        for days in (91, 89, 0):
            session.add(LinkView(tenant_id=t.id, invoice_id=INVOICE, total=Decimal("10"), kind="page",
                                 viewer="client", viewed_at=now - timedelta(days=days)))
    session = app.extensions["session_factory"]()
    from app.db import set_session_tenant

    set_session_tenant(session, t.id)
    for statement in ("update link_views set total = 0", "delete from link_views"):
        with pytest.raises(DBAPIError) as info:
            session.execute(text(statement))
        assert "permission denied" in str(info.value)
        session.rollback()
        set_session_tenant(session, t.id)
    session.close()
    session = app.extensions["session_factory"]()
    removed = purge_expired_views_rows(session)
    session.commit()
    session.close()
    assert removed >= 1
    kept = sorted(round((now - v.viewed_at).days) for v in _views(app, t.id))
    assert kept == [0, 89]


def test_the_daily_schedule_includes_link_view_retention():
    from app.jobs.schedule import PERIODIC

    assert PERIODIC["link_view_retention"][0] == "app.invoices.retention.purge_expired_views"


def test_the_token_lookup_returns_only_tenant_link_invoice_and_state(app, client, make_tenant, sim):
    t = connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    from app.invoices.links import hash_token

    with app.extensions["engine"].connect() as conn:  # no tenant set: the pre-tenant path
        result = conn.execute(text("select * from bi_public_link_lookup(:h)"), {"h": hash_token(token)})
        assert list(result.keys()) == ["tenant_id", "link_id", "invoice_id", "status"]
        row = result.one()
        assert (row.tenant_id, row.invoice_id, row.status) == (t.id, INVOICE, "active")
        assert conn.execute(text("select * from bi_public_link_lookup(:h)"), {"h": b"x" * 31}).all() == []
        assert conn.execute(text("select count(*) from public_links")).scalar() == 0


def test_a_public_pdf_clicked_again_is_served_from_a_short_tenant_keyed_cache_and_still_counted(app, client,
                                                                                              make_tenant, sim,
                                                                                              redis_conn):
    t = connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    visitor = app.test_client()
    first = visitor.get(f"/i/{token}/pdf")
    before = len(sim.requests)
    second = visitor.get(f"/i/{token}/pdf")
    assert second.status_code == 200 and second.data == first.data
    assert len(sim.requests) == before  # neither ConnectWise nor the renderer ran again
    assert "Invoice-INV-10003.pdf" in second.headers["Content-Disposition"]
    keys = [k.decode() for k in redis_conn.scan_iter("bi:pubpdf:*")]
    assert keys and all(k.startswith(f"bi:pubpdf:{t.id}:") for k in keys)
    assert 0 < redis_conn.ttl(keys[0]) <= app.config["BI"].CONNECTWISE_CACHE_TTL_SECONDS
    assert [(v.kind, v.viewer) for v in _views(app, t.id)] == [("pdf", "client")] * 2
    # Revoking still ends it at once, cached file or not.
    client.post(f"/invoices/{INVOICE}/links/revoke-all", headers=htmx(client))
    assert visitor.get(f"/i/{token}/pdf").status_code == 410


def test_the_request_log_never_holds_a_public_token(app, client, make_tenant, sim, caplog):
    import logging

    connected_tenant(client, make_tenant, sim)
    token = make_link(client, INVOICE)
    visitor = app.test_client()
    with caplog.at_level(logging.INFO):
        for path in (f"/i/{token}", f"/i/{token}/pdf", f"/i/{token}/brand.css", "/i/" + "Z" * 43):
            visitor.get(path)
    lines = [r.getMessage() for r in caplog.records] + [str(getattr(r, "path", "")) for r in caplog.records]
    assert any("/i/<token>" in line for line in lines)
    assert not any(token in line or "Z" * 43 in line for line in lines)
