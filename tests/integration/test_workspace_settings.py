"""The workspace settings page (time zone and locale: saved, validated, refused to other roles, audited), times
shown in the workspace's zone, browsers named on the sessions page, and the request id on error pages only."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from app.audit.log import Actor, record
from app.tenancy import tenant_session
from app.tenants.models import TenantSettings
from app.users.models import User
from tests.conftest import csrf_of, sign_in
from tests.integration.signin_helpers import audit_rows, sign_in_with_code


@pytest.fixture(autouse=True)
def _clean(redis_conn):  # type: ignore[no-untyped-def]
    return redis_conn


def _settings(app, tenant_id) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as s:
        row = s.get(TenantSettings, tenant_id)
        return row.timezone, row.locale


def _set_zone(app, tenant_id, zone: str) -> None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as s:
        s.get(TenantSettings, tenant_id).timezone = zone


def _user(app, tenant, role: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    uid = uuid.uuid4()
    with tenant_session(tenant.id, app.extensions["session_factory"]) as s:
        s.add(User(id=uid, tenant_id=tenant.id, email=f"{role}-{uid.hex[:6]}@x.example", name=role, role=role,
                   active=True))
    return uid


def test_an_owner_sets_the_time_zone_and_locale_and_the_change_is_audited(app, client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    page = client.get("/settings/workspace/").get_data(as_text=True)
    assert '<option value="Europe/Berlin"' in page and '<option value="de-DE"' in page
    response = client.post("/settings/workspace/", data={"timezone": "Europe/Berlin", "locale": "de-DE",
                                                         "csrf_token": csrf_of(client)})
    assert response.status_code == 302
    assert _settings(app, t.id) == ("Europe/Berlin", "de-DE")
    [entry] = audit_rows(app, t.id, "workspace.settings_changed")
    assert entry.before == {"timezone": "UTC", "locale": "en-US"}
    assert entry.after == {"timezone": "Europe/Berlin", "locale": "de-DE"}
    assert entry.actor_id == str(t.owner_id)
    saved = client.get("/settings/workspace/").get_data(as_text=True)
    assert '<option value="Europe/Berlin" selected>' in saved and '<option value="de-DE" selected>' in saved


def test_saving_the_same_values_again_writes_no_audit_row(app, client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    for _ in range(2):
        client.post("/settings/workspace/", data={"timezone": "Asia/Tokyo", "locale": "ja-JP",
                                                  "csrf_token": csrf_of(client)})
    assert len(audit_rows(app, t.id, "workspace.settings_changed")) == 1


@pytest.mark.parametrize(("form", "message"), [
    ({"timezone": "Mars/Olympus_Mons", "locale": "en-GB"}, "is not a time zone we know"),
    ({"timezone": "", "locale": "en-GB"}, "Choose a time zone"),
    ({"timezone": "Europe/Paris", "locale": "xx-QQ"}, "is not a locale we know"),
    ({"timezone": "Europe/Paris", "locale": "fr"}, "with its region"),
    ({"timezone": "Europe/Paris", "locale": "<script>"}, "is not a locale we know"),
])
def test_an_unknown_zone_or_locale_is_refused_inline_with_422_and_nothing_is_saved(app, client, make_tenant, form,
                                                                                   message):
    t = make_tenant()
    sign_in(client, t)
    response = client.post("/settings/workspace/", data={**form, "csrf_token": csrf_of(client)})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html and 'class="field-error"' in html and 'aria-invalid="true"' in html
    assert "<script>" not in html.split("<main", 1)[1].replace('<script src=', '')
    assert _settings(app, t.id) == ("UTC", "en-US")
    assert audit_rows(app, t.id, "workspace.settings_changed") == []


@pytest.mark.parametrize("role", ["billing_manager", "reviewer", "viewer"])
def test_roles_below_admin_cannot_see_or_change_the_workspace_settings(app, client, make_tenant, role):
    t = make_tenant()
    sign_in(client, t, _user(app, t, role))
    assert client.get("/settings/workspace/").status_code == 403
    response = client.post("/settings/workspace/", data={"timezone": "Europe/Berlin", "locale": "de-DE",
                                                         "csrf_token": csrf_of(client)})
    assert response.status_code == 403
    assert _settings(app, t.id) == ("UTC", "en-US")
    assert audit_rows(app, t.id, "auth.forbidden")


def test_an_admin_may_change_the_workspace_settings(app, client, make_tenant):
    t = make_tenant()
    sign_in(client, t, _user(app, t, "admin"))
    response = client.post("/settings/workspace/", data={"timezone": "America/Chicago", "locale": "en-US",
                                                         "csrf_token": csrf_of(client)})
    assert response.status_code == 302 and _settings(app, t.id)[0] == "America/Chicago"


def test_the_page_offers_the_browser_zone_through_its_own_script_not_inline(client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    html = client.get("/settings/workspace/").get_data(as_text=True)
    assert '<script src="/static/js/workspace-timezone.js" defer></script>' in html
    assert 'id="browser-zone" data-current="UTC" hidden' in html and "data-use-browser-zone" in html
    for chunk in html.split("<script")[1:]:
        assert chunk.split(">", 1)[0].strip().startswith("src=")
    script = client.get("/static/js/workspace-timezone.js")
    assert script.status_code == 200 and b"Intl.DateTimeFormat().resolvedOptions().timeZone" in script.data


def _audited_at(app, tenant_id, when: datetime) -> None:  # type: ignore[no-untyped-def]
    with tenant_session(tenant_id, app.extensions["session_factory"]) as s:
        record(s, tenant_id, Actor.system("Member sync"), "users.synced", after={"created": 3}, now=when)


def test_times_are_shown_in_the_workspace_zone_with_its_abbreviation(app, client, make_tenant):
    t = make_tenant()
    _set_zone(app, t.id, "Europe/Berlin")
    winter, summer = datetime(2099, 1, 15, 12, 0, tzinfo=UTC), datetime(2099, 7, 1, 12, 0, tzinfo=UTC)
    _audited_at(app, t.id, winter)
    _audited_at(app, t.id, summer)
    sign_in(client, t)
    html = client.get("/settings/audit-log/").get_data(as_text=True)
    assert "15 Jan 2099 13:00 CET" in html and "01 Jul 2099 14:00 CEST" in html
    assert 'datetime="2099-01-15T12:00:00+00:00"' in html
    _set_zone(app, t.id, "UTC")
    assert "15 Jan 2099 12:00 UTC" in client.get("/settings/audit-log/").get_data(as_text=True)


def test_the_sessions_page_names_the_browser_and_shows_times_in_the_workspace_zone(app, make_tenant):
    t = make_tenant()
    _set_zone(app, t.id, "Asia/Tokyo")
    laptop, phone, robot = app.test_client(), app.test_client(), app.test_client()
    laptop.environ_base["HTTP_USER_AGENT"] = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
                                              "Gecko) Chrome/124.0.0.0 Safari/537.36")
    phone.environ_base["HTTP_USER_AGENT"] = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) "
                                             "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 "
                                             "Safari/604.1")
    robot.environ_base["HTTP_USER_AGENT"] = ""
    for c in (laptop, phone, robot):
        sign_in_with_code(app, c, t.owner_email)
    html = laptop.get("/account/sessions").get_data(as_text=True)
    assert "Chrome on Linux" in html and "Safari on iPhone" in html and "Unknown browser" in html
    assert "AppleWebKit" not in html and "Mozilla/5.0" not in html
    assert re.search(r"\d{2}:\d{2} JST</time>", html)


def test_the_request_id_is_on_error_pages_and_not_on_other_pages(client, make_tenant):
    t = make_tenant()
    sign_in(client, t)
    for path in ("/", "/settings/workspace/", "/account/sessions"):
        response = client.get(path)
        assert response.status_code == 200
        rid = response.headers["X-Request-ID"]
        assert rid and rid not in response.get_data(as_text=True), path
    missing = client.get("/settings/no-such-page")
    assert missing.status_code == 404
    assert f"quote request id <code>{missing.headers['X-Request-ID']}</code>" in missing.get_data(as_text=True)
    refused = client.post("/settings/workspace/", data={"timezone": "Nowhere/Land", "locale": "en-US",
                                                        "csrf_token": csrf_of(client)})
    assert refused.status_code == 422 and refused.headers["X-Request-ID"] not in refused.get_data(as_text=True)
