"""Principals and the request's tenant: loading whoever a session names sets no tenant; the tenant is set once, after
loading and before the view; a public link for one tenant opened by a browser signed in to another shows only the
link's tenant."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from flask import Blueprint, g, jsonify, session
from sqlalchemy import func, select, text

from app.db import session_tenant
from app.invoices.models import LinkView
from app.support.models import SupportGrant
from app.tenancy import db_session, tenant_session
from app.users.models import User
from tests.conftest import sign_in
from tests.integration.invoice_helpers import (  # noqa: F401 (fixtures)
    AT,
    connect,
    make_link,
    sim_knobs_at_defaults,
)

STAFF = f"sam{AT}betterinvoice.example"
INVOICE = 3

probe = Blueprint("principal_probe", __name__)


@probe.get("/_probe/tenant")
def _tenant_seen_by_the_view():  # type: ignore[no-untyped-def]
    # Read before anything in the view touches current_user, so only the hooks can have set it.
    loaded_before_view = "_login_user" in g
    return jsonify(tenant=g.get("tenant_id"), bound=session_tenant(db_session()), loaded=loaded_before_view,
                   users=db_session().execute(select(func.count()).select_from(User)).scalar_one())


@pytest.fixture(scope="module")
def probed_app(config):  # type: ignore[no-untyped-def]
    from app import create_app

    application = create_app(replace(config, SUPPORT_STAFF_EMAILS=STAFF))
    application.register_blueprint(probe)
    yield application
    application.extensions["engine"].dispose()


def _load(app, key: str):  # type: ignore[no-untyped-def]
    """What Flask-Login calls to turn the session's principal key back into a principal."""
    return app.login_manager._user_callback(key)


def _visible_users() -> int:
    return db_session().execute(text("select count(*) from users")).scalar_one()


def test_loading_a_tenant_user_sets_no_tenant(probed_app, make_tenant):
    t = make_tenant()
    with probed_app.test_request_context("/"):
        user = _load(probed_app, f"{t.id}:{t.owner_id}")
        assert user is not None and user.email == t.owner_email and user.tenant_id == t.id
        assert g.get("tenant_id") is None
        assert session_tenant(db_session()) is None
        assert _visible_users() == 0  # the database sees no tenant either: RLS shows nothing


def test_loading_an_unknown_or_inactive_user_gives_nobody_and_sets_no_tenant(probed_app, make_tenant):
    t = make_tenant()
    with tenant_session(t.id, probed_app.extensions["session_factory"]) as s:
        inactive = User(id=uuid.uuid4(), tenant_id=t.id, email=f"gone-{uuid.uuid4().hex[:6]}{AT}example.com",
                        role="viewer", active=False)
        s.add(inactive)
    with probed_app.test_request_context("/"):
        assert _load(probed_app, f"{t.id}:{uuid.uuid4()}") is None
        assert _load(probed_app, f"{t.id}:{inactive.id}") is None
        assert _load(probed_app, "not-a-key") is None
        assert g.get("tenant_id") is None and session_tenant(db_session()) is None


def test_loading_a_support_principal_sets_no_tenant(probed_app, make_tenant):
    t = make_tenant()
    grant_id = uuid.uuid4()
    now = datetime.now(UTC)
    with tenant_session(t.id, probed_app.extensions["session_factory"]) as s:
        s.add(SupportGrant(id=grant_id, tenant_id=t.id, staff_email=STAFF, reason="Checking the tax caption",
                           minutes=30, status="active", starts_at=now, expires_at=now + timedelta(minutes=30)))
    with probed_app.test_request_context("/"):
        session["staff_email"] = STAFF
        principal = _load(probed_app, f"support:{t.id}:{grant_id}")
        assert principal is not None and principal.tenant_id == t.id and principal.role == "support"
        assert g.get("tenant_id") is None and session_tenant(db_session()) is None
        assert _visible_users() == 0


def test_a_signed_in_request_has_its_tenant_set_before_the_view_runs(probed_app, make_tenant):
    t = make_tenant()
    client = probed_app.test_client()
    sign_in(client, t)
    seen = client.get("/_probe/tenant").get_json()
    assert seen["loaded"] is True
    assert seen["tenant"] == str(t.id) and seen["bound"] == str(t.id)
    assert seen["users"] == 1  # the tenant's own owner, through RLS


def test_a_signed_out_request_has_no_tenant(probed_app):
    seen = probed_app.test_client().get("/_probe/tenant").get_json()
    assert seen["tenant"] is None and seen["bound"] is None and seen["users"] == 0


def _brand(client, colour: str, footer: str) -> None:  # type: ignore[no-untyped-def]
    from app.branding.model import branding_to_form, default_branding
    from tests.conftest import csrf_of

    form = {**branding_to_form(default_branding()), "page_size": "A4", "csrf_token": csrf_of(client),
            "preview_invoice": "3", "brand_colour": colour, "footer_text": footer}
    response = client.post("/settings/branding/", data={k: v for k, v in form.items() if v is not None})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]


def _views(app, tenant_id) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as s:
        return [(v.kind, v.viewer) for v in s.execute(select(LinkView).order_by(LinkView.id)).scalars()]


def test_a_public_link_of_tenant_b_opened_while_signed_in_to_tenant_a_shows_only_b(app, client, make_tenant, sim):
    a = make_tenant(f"Alpha IT {uuid.uuid4().hex[:6]}")
    sign_in(client, a)
    connect(client, sim)
    _brand(client, "#a1a1a1", "Alpha footer words")
    b = make_tenant(f"Bravo IT {uuid.uuid4().hex[:6]}")
    b_browser = app.test_client()
    sign_in(b_browser, b)
    connect(b_browser, sim)
    _brand(b_browser, "#b2b2b2", "Bravo footer words")
    token = make_link(b_browser, INVOICE)

    page = client.get(f"/i/{token}")  # the browser signed in to A
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "INV-10003" in html
    assert "Bravo footer words" in html and "Alpha footer words" not in html and "Alpha IT" not in html
    css = client.get(f"/i/{token}/brand.css").get_data(as_text=True)
    assert "#b2b2b2" in css and "#a1a1a1" not in css
    pdf = client.get(f"/i/{token}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert _views(app, b.id) == [("page", "client"), ("pdf", "client")]  # A's user is no staff of B
    assert _views(app, a.id) == []
    # The browser is still A's afterwards.
    assert "Alpha IT" in client.get("/").get_data(as_text=True)
