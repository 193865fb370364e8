"""Every route is public on purpose or needs sign-in; every permission is refused to the roles without it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.auth.roles import PERMISSIONS
from app.tenancy import tenant_session
from app.users.models import ROLES, User
from tests.conftest import csrf_of, sign_in

# Reachable without signing in, each for a reason.
PUBLIC = {
    "static",
    "health.healthz",
    "auth.sign_in", "auth.request_code", "auth.enter_code", "auth.check_code",
    "auth.break_glass", "auth.request_break_glass",  # same answer for every email; the job decides
    "auth.choose",  # needs a proven email in the session, or a signed-in user
    "auth.sign_out",
    "sso.start", "sso.callback",
    "public_invoices.page", "public_invoices.pdf", "public_invoices.brand_css", "public_invoices.logo",
    "public_invoices.pdf_status", "public_invoices.pdf_file",
    "review_hooks.receive_callback",  # ConnectWise calls it; its signature is the proof (issue 11)
    "signup.start",  # "Start free": a new workspace is made from here (issue 15)
    "signup.request_code", "signup.enter_code", "signup.check_code",  # same answer for every email (issue 15)
    "signup.from_provider",  # needs the identity the SSO callback proved, in the session
    "signup.workspace", "signup.create", "signup.existing",  # need a proven email in the session
    "sending_hooks.mailgun",  # Mailgun's delivery events; the signature in the body is the proof (issue 14)
    "billing_hooks.stripe",  # Stripe's subscription events; its signature over the raw body is the proof (issue 15)
    # Guest reviewer links (issue 13): the token opens a guest session; the rest need that session's live link.
    "review_guest.open_link", "review_guest.page", "review_guest.pdf", "review_guest.brand_css", "review_guest.logo",
    "review_guest.comment", "review_guest.approve", "review_guest.reject",
}
# Platform support staff only: 404 for everyone else (checked below).
STAFF_ONLY = {"support.console", "support.request_grant", "support.open_access", "support.leave"}
# Any signed-in user, whatever the role.
SIGNED_IN = {"main.dashboard", "auth.sessions", "auth.end_sessions"}


def _url(rule) -> str:  # type: ignore[no-untyped-def]
    values = {}
    for arg in rule.arguments:
        converter = rule._converters[arg].__class__.__name__  # noqa: SLF001
        values[arg] = 1 if converter == "IntegerConverter" else (uuid.uuid4() if converter == "UUIDConverter" else "x")
    from flask import url_for

    return url_for(rule.endpoint, **values)


def _rules(app):  # type: ignore[no-untyped-def]
    return [r for r in app.url_map.iter_rules() if not r.endpoint.startswith("dev.")]


def test_every_route_is_public_staff_only_signed_in_or_needs_a_permission(app):
    undeclared = []
    for rule in _rules(app):
        view = app.view_functions[rule.endpoint]
        if rule.endpoint in PUBLIC | STAFF_ONLY | SIGNED_IN:
            continue
        if getattr(view, "required_permission", None) not in PERMISSIONS:
            undeclared.append(rule.endpoint)
    assert undeclared == []


def test_every_non_public_route_sends_an_anonymous_visitor_to_sign_in(app):
    client = app.test_client()
    token = csrf_of(client)
    for rule in _rules(app):
        if rule.endpoint in PUBLIC:
            continue
        with app.test_request_context():
            url = _url(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data={"csrf_token": token})
            expected = 404 if rule.endpoint in STAFF_ONLY else 302
            assert response.status_code == expected, (rule.endpoint, method, response.status_code)
            if expected == 302:
                assert response.headers["Location"].startswith("/sign-in"), rule.endpoint


def _user(app, tenant, role: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        user = User(id=uuid.uuid4(), tenant_id=tenant.id, email=f"{role}-{uuid.uuid4().hex[:6]}" + chr(64) + "x.example",
                    name=role, role=role, active=True)
        s.add(user)
        return user.id


@pytest.mark.parametrize("role", [r for r in ROLES if r != "owner"])
def test_each_protected_action_refuses_a_role_without_its_permission_and_audits_it(app, make_tenant, role):
    t = make_tenant()
    user_id = _user(app, t, role)
    client = app.test_client()
    sign_in(client, t, user_id)
    token = csrf_of(client)
    refused = []
    for rule in _rules(app):
        permission = getattr(app.view_functions[rule.endpoint], "required_permission", None)
        if permission is None or role in PERMISSIONS[permission]:
            continue
        with app.test_request_context():
            url = _url(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data={"csrf_token": token})
            assert response.status_code == 403, (rule.endpoint, method, response.status_code)
            assert "Your role does not allow this" in response.get_data(as_text=True)
            refused.append(rule.endpoint)
    assert refused, "this role should be refused something"
    with tenant_session(t.id, app.extensions["session_factory"]) as s:
        audited = s.execute(select(AuditEntry.target_id).where(AuditEntry.action == "auth.forbidden",
                                                              AuditEntry.actor_id == str(user_id))).scalars().all()
    assert sorted(audited) == sorted(refused)


def test_the_owner_may_do_everything(app):
    # Except what customers ask platform support for (Trust & Security: "contact us to disable this").
    support_only = {"review_storage"}
    assert all("owner" in roles for name, roles in PERMISSIONS.items() if name not in support_only)
    assert all(PERMISSIONS[name] == frozenset({"support"}) for name in support_only)


def test_support_staff_never_manage_users_billing_or_support_access():
    for permission in ("users_and_roles", "billing", "approve_support_access"):
        assert "support" not in PERMISSIONS[permission]
