"""Time-limited support access: staff ask with a reason, the owner approves, it ends on its own, all audited."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.support.models import SupportGrant
from app.tenancy import tenant_session
from app.tenants.models import TenantSettings
from tests.conftest import csrf_of, sign_in
from tests.integration.signin_helpers import AT, audit_rows, run_jobs, sign_in_with_code

STAFF = f"sam{AT}betterinvoice.example"


@pytest.fixture()
def staff_app(config, redis_conn):  # type: ignore[no-untyped-def]
    from app import create_app

    application = create_app(replace(config, SUPPORT_STAFF_EMAILS=f"{STAFF}, other{AT}betterinvoice.example"))
    yield application
    application.extensions["engine"].dispose()


def _staff_client(app):  # type: ignore[no-untyped-def]
    client = app.test_client()
    response = sign_in_with_code(app, client, STAFF)
    assert response.headers["Location"] == "/sign-in/choose"
    response = client.post("/sign-in/choose", data={"tenant_id": "support", "csrf_token": csrf_of(client)})
    assert response.headers["Location"] == "/support/"
    return client


def _ask(client, tenant_id, reason: str = "Invoice 1042 renders the wrong tax caption", minutes: int = 30):  # type: ignore[no-untyped-def]
    return client.post("/support/requests", data={"tenant_id": str(tenant_id), "reason": reason,
                                                  "minutes": str(minutes), "csrf_token": csrf_of(client)})


def _grant(app, tenant_id) -> SupportGrant:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as s:
        grant = s.execute(select(SupportGrant).order_by(SupportGrant.requested_at.desc())).scalars().first()
        s.expunge(grant)
        return grant


def test_support_staff_request_the_owner_approves_and_staff_open_the_tenant_with_a_banner(staff_app, make_tenant):
    name = f"Customer IT {uuid.uuid4().hex[:6]}"
    t = make_tenant(name)
    staff = _staff_client(staff_app)
    assert name in staff.get(f"/support/?q={name.lower()}").get_data(as_text=True)
    _ask(staff, t.id)
    grant = _grant(staff_app, t.id)
    assert grant.status == "pending" and grant.staff_email == STAFF
    # Pending: staff cannot open it.
    assert staff.post(f"/support/grants/{t.id}/{grant.id}/open", data={"csrf_token": csrf_of(staff)}).status_code == 403
    owner = staff_app.test_client()
    sign_in(owner, t)
    page = owner.get("/settings/support-access/").get_data(as_text=True)
    assert "Invoice 1042 renders the wrong tax caption" in page
    owner.post(f"/settings/support-access/{grant.id}/approve", data={"csrf_token": csrf_of(owner)})
    grant = _grant(staff_app, t.id)
    assert grant.status == "active" and (grant.expires_at - grant.starts_at).total_seconds() == 30 * 60
    response = staff.post(f"/support/grants/{t.id}/{grant.id}/open", data={"csrf_token": csrf_of(staff)})
    assert response.status_code == 302
    dashboard = staff.get("/").get_data(as_text=True)
    assert name in dashboard and "has access to this account until" in dashboard
    assert "has access to this account until" in owner.get("/").get_data(as_text=True)  # the tenant sees it too
    # Staff may look at the audit log, never the users page.
    assert staff.get("/settings/audit-log/").status_code == 200
    assert staff.get("/settings/users/").status_code == 403
    actions = [(e.action, e.actor_type, e.actor_label) for e in audit_rows(staff_app, t.id)]
    assert ("support.requested", "support", STAFF) in actions
    assert ("support.approved", "user", t.owner_email) in actions
    assert ("support.opened", "support", STAFF) in actions
    assert any(a == "support.action" and who == STAFF for a, _, who in actions)
    assert any(a == "auth.forbidden" and kind == "support" for a, kind, _ in actions)
    # A change made through the grant is the staff member's, not a user's.
    from app.branding.model import branding_to_form, default_branding

    form = {**branding_to_form(default_branding()), "page_size": "A4", "brand_colour": "#123456",
            "csrf_token": csrf_of(staff)}
    assert staff.post("/settings/branding/", data={k: v for k, v in form.items() if v is not None}).status_code == 302
    [saved] = audit_rows(staff_app, t.id, "branding.saved")
    assert (saved.actor_type, saved.actor_label, saved.actor_id) == ("support", STAFF, str(grant.id))


def test_an_expired_grant_is_refused_and_its_expiry_audited(staff_app, make_tenant):
    t = make_tenant()
    with tenant_session(t.id, staff_app.extensions["session_factory"]) as s:
        s.get(TenantSettings, t.id).support_access_requires_approval = False
    staff = _staff_client(staff_app)
    _ask(staff, t.id, minutes=5)
    grant = _grant(staff_app, t.id)
    assert grant.status == "active"  # this tenant allows access without approval
    staff.post(f"/support/grants/{t.id}/{grant.id}/open", data={"csrf_token": csrf_of(staff)})
    assert staff.get("/").status_code == 200
    with tenant_session(t.id, staff_app.extensions["session_factory"]) as s:  # the hour has passed
        s.execute(update(SupportGrant).where(SupportGrant.id == grant.id).values(
            starts_at=SupportGrant.starts_at - timedelta(minutes=10),
            expires_at=SupportGrant.expires_at - timedelta(minutes=10)))
    assert staff.get("/").status_code == 302  # refused at once
    assert staff.post(f"/support/grants/{t.id}/{grant.id}/open", data={"csrf_token": csrf_of(staff)}).status_code == 403
    expired = [e for e in audit_rows(staff_app, t.id) if e.action == "support.expired"]
    assert len(expired) == 1 and expired[0].after["staff"] == STAFF
    assert _grant(staff_app, t.id).status == "ended"


def test_the_expiry_job_ends_the_grant_on_its_own(staff_app, make_tenant):
    t = make_tenant()
    with tenant_session(t.id, staff_app.extensions["session_factory"]) as s:
        s.get(TenantSettings, t.id).support_access_requires_approval = False
    staff = _staff_client(staff_app)
    _ask(staff, t.id, minutes=5)
    grant = _grant(staff_app, t.id)
    from rq.registry import ScheduledJobRegistry

    from app.jobs.queue import get_queue

    queue = get_queue(staff_app.extensions["redis"], "maintenance")
    scheduled = ScheduledJobRegistry(queue=queue).get_job_ids()
    assert len(scheduled) == 1
    job = queue.fetch_job(scheduled[0])
    assert list(job.args) == [str(t.id), str(grant.id)]
    with tenant_session(t.id, staff_app.extensions["session_factory"]) as s:
        s.execute(update(SupportGrant).where(SupportGrant.id == grant.id).values(
            expires_at=SupportGrant.starts_at))
    queue.enqueue_job(job)  # what the scheduler does when the time comes
    run_jobs(staff_app, "maintenance")
    assert _grant(staff_app, t.id).status == "ended"
    assert [e.action for e in audit_rows(staff_app, t.id)].count("support.expired") == 1


def test_a_request_needs_a_reason_and_at_most_sixty_minutes(staff_app, make_tenant):
    t = make_tenant()
    staff = _staff_client(staff_app)
    short = _ask(staff, t.id, reason="help")
    assert short.status_code == 422 and "at least 10 characters" in short.get_data(as_text=True)
    long = _ask(staff, t.id, minutes=61)
    assert long.status_code == 422 and "between 5 and 60 minutes" in long.get_data(as_text=True)
    with tenant_session(t.id, staff_app.extensions["session_factory"]) as s:
        assert s.execute(select(SupportGrant)).first() is None


def test_the_console_does_not_exist_for_anyone_but_staff(staff_app, make_tenant):
    t = make_tenant()
    owner = staff_app.test_client()
    sign_in_with_code(staff_app, owner, t.owner_email)
    assert owner.get("/support/").status_code == 404
    assert _ask(owner, t.id).status_code == 404


def test_an_owner_can_deny_or_end_access(staff_app, make_tenant):
    t = make_tenant()
    staff = _staff_client(staff_app)
    _ask(staff, t.id)
    owner = staff_app.test_client()
    sign_in(owner, t)
    grant = _grant(staff_app, t.id)
    owner.post(f"/settings/support-access/{grant.id}/deny", data={"csrf_token": csrf_of(owner)})
    assert _grant(staff_app, t.id).status == "denied"
    again = owner.post(f"/settings/support-access/{grant.id}/approve", data={"csrf_token": csrf_of(owner)})
    assert again.status_code == 409
    _ask(staff, t.id)
    grant = _grant(staff_app, t.id)
    owner.post(f"/settings/support-access/{grant.id}/approve", data={"csrf_token": csrf_of(owner)})
    staff.post(f"/support/grants/{t.id}/{grant.id}/open", data={"csrf_token": csrf_of(staff)})
    owner.post(f"/settings/support-access/{grant.id}/end", data={"csrf_token": csrf_of(owner)})
    assert staff.get("/").status_code == 302
    assert owner.post(f"/settings/support-access/{uuid.uuid4()}/approve",
                      data={"csrf_token": csrf_of(owner)}).status_code == 409
