"""The ConnectWise site on the settings page and the CLI: hostile hosts refused beside the field and never saved,
on-premises hosts only when an owner allowed them (audited), the stored private key never sent to a new host and
never shown. The resolver is our own injected seam (``Services.connectwise_resolver``)."""

from __future__ import annotations

import dataclasses
import re
import socket

import pytest
from sqlalchemy import select, text

from app.audit.log import Actor
from app.audit.models import AuditEntry
from app.auth.roles import PERMISSIONS
from app.connectwise.connection import FormError, credentials, save_connection
from app.connectwise.models import Connection
from app.services import EXTENSION as SERVICES
from app.services import services_of
from app.tenancy import tenant_session
from tests.conftest import csrf_of, sign_in
from tests.integration.test_access_control import _user

PUBLIC_IP = "93.184.215.14"
# Distinctive, so any run of four of its characters on a page or in an audit row is a leak, not a coincidence.
PRIVATE = "Zq8vK3xW7pRt2mYj"


def _post(client, **data):  # type: ignore[no-untyped-def]
    return client.post("/settings/connectwise/", data={"csrf_token": csrf_of(client), **data})


def _save(client, sim, **overrides):  # type: ignore[no-untyped-def]
    data = {"site": sim.url, "company_id": sim.company_id, "public_key": sim.public_key,
            "private_key": sim.private_key, **overrides}
    return _post(client, **data)


def _conn(app, tenant):  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        conn = session.execute(select(Connection)).scalar_one_or_none()
        if conn is None:
            return None
        return conn.site, conn.company_id, credentials(conn, app.extensions["keyring"]).private_key


def _audit(app, tenant, prefix: str = "connectwise."):  # type: ignore[no-untyped-def]
    with tenant_session(tenant.id, app.extensions["session_factory"]) as session:
        rows = session.execute(select(AuditEntry).where(AuditEntry.action.like(prefix + "%"))
                               .order_by(AuditEntry.created_at)).scalars().all()
        return [(r.action, r.before, r.after) for r in rows]


def _leaks(secret: str, haystack: str) -> list[str]:
    return [secret[i:i + 4] for i in range(len(secret) - 3) if secret[i:i + 4] in haystack]


@pytest.fixture()
def resolver(app, monkeypatch):  # type: ignore[no-untyped-def]
    """Answers from a table the test fills; records every lookup."""
    answers: dict[str, list[list[str]]] = {}
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        queue = answers.get(host) or [[PUBLIC_IP]]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    resolve.answers, resolve.calls = answers, calls  # type: ignore[attr-defined]
    services = services_of(app)
    monkeypatch.setitem(app.extensions, SERVICES, dataclasses.replace(services, connectwise_resolver=resolve))
    return resolve


WEB_HOSTILE = [
    ("169.254.169.254", "link-local"),
    ("https://10.1.2.3:8443", "private"),
    ("192.168.1.10", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("[fd00::1]", "unique local"),
    ("[::ffff:169.254.169.254]", "link-local"),
    ("http://2852039166", "four plain numbers"),
    ("0xA9FEA9FE", "four plain numbers"),
    ("0251.0376.0251.0376", "four plain numbers"),
    ("intranet", "full host name"),
    ("cw.corp.example.com", "not a ConnectWise cloud site"),
    ("https://na.myconnectwise.net:6379", "port 443"),
    ("not a url", "not a ConnectWise site address"),
    ("https://", "not a ConnectWise site address"),
    ("ftp://x", "not a ConnectWise site address"),
]


@pytest.mark.parametrize("site,message", WEB_HOSTILE, ids=[h[0] for h in WEB_HOSTILE])
def test_a_hostile_site_is_refused_beside_the_field_and_nothing_is_saved(app, client, make_tenant, fresh_sim,
                                                                          resolver, site, message):
    t = make_tenant()
    sign_in(client, t)
    response = _save(client, fresh_sim, site=site)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    field = html.split('name="site"', 1)[1].split("</label>", 1)[0]
    assert message in field and 'aria-invalid="true"' in html.split('name="site"', 1)[1].split(">", 1)[0]
    assert _conn(app, t) is None and _audit(app, t) == []
    assert not any("companyinfo" in r.path for r in fresh_sim.requests)


@pytest.mark.parametrize("site,message", [("https://127.0.0.1:6379", "loopback"), ("http://127.0.0.1:8000", "HTTPS"),
                                          ("localhost", "loopback"), ("https://[::1]", "loopback")])
def test_loopback_is_refused_when_production_rules_apply(app, make_tenant, site, message):
    t = make_tenant()
    with tenant_session(t.id, app.extensions["session_factory"]) as session, \
            pytest.raises(FormError, match=message) as caught:
        save_connection(session, app.extensions["keyring"], t.id, site=site, company_id="acme", public_key="pub",
                        private_key=PRIVATE, allow_loopback_http=False, actor=Actor.system("test"))
    assert caught.value.field == "site"
    assert _conn(app, t) is None


def test_cloud_hosts_are_saved_under_production_rules(app, make_tenant):
    t = make_tenant()
    for site in ("na.myconnectwise.net", "https://api-eu.myconnectwise.net", "staging.connectwisedev.com"):
        with tenant_session(t.id, app.extensions["session_factory"]) as session:
            save_connection(session, app.extensions["keyring"], t.id, site=site, company_id="acme",
                            public_key="pub", private_key=PRIVATE, allow_loopback_http=False,
                            actor=Actor.system("test"))
        assert _conn(app, t)[0] == "https://" + site.removeprefix("https://")


# -- on-premises hosts --------------------------------------------------------------------------------------

def _add_host(client, host: str):  # type: ignore[no-untyped-def]
    return client.post("/settings/connectwise/hosts", data={"csrf_token": csrf_of(client), "host": host})


def test_only_owners_may_allow_an_on_prem_host():
    assert PERMISSIONS["connectwise_hosts"] == frozenset({"owner"})


def test_an_admin_cannot_allow_an_on_prem_host(app, client, make_tenant, resolver):
    t = make_tenant()
    sign_in(client, t, _user(app, t, "admin"))
    assert _add_host(client, "cw.acme-onprem.example").status_code == 403
    assert _audit(app, t, "connectwise.onprem") == []


def test_an_on_prem_host_that_resolves_to_a_private_address_is_refused(app, client, make_tenant, resolver):
    t = make_tenant()
    sign_in(client, t)
    resolver.answers["cw.acme-onprem.example"] = [["10.20.30.40"]]
    response = _add_host(client, "cw.acme-onprem.example")
    assert response.status_code == 422
    assert "10.20.30.40" in response.get_data(as_text=True) and "private" in response.get_data(as_text=True)
    assert _audit(app, t, "connectwise.onprem") == []
    assert "cw.acme-onprem.example" not in client.get("/settings/connectwise/").get_data(as_text=True).split(
        'name="host"')[0]
    assert _post(client, site="cw.acme-onprem.example", company_id="acme", public_key="pub",
                 private_key=PRIVATE).status_code == 422


def test_an_owner_allows_an_on_prem_host_audited_and_can_then_save_it(app, client, make_tenant, resolver):
    t = make_tenant()
    sign_in(client, t)
    assert _add_host(client, "https://CW.acme-onprem.example:8443/").status_code == 302
    assert _audit(app, t, "connectwise.onprem") == [
        ("connectwise.onprem_host_added", None, {"host": "cw.acme-onprem.example:8443", "addresses": [PUBLIC_IP]})]
    page = client.get("/settings/connectwise/").get_data(as_text=True)
    assert "cw.acme-onprem.example:8443" in page
    response = _post(client, site="cw.acme-onprem.example:8443", company_id="acme", public_key="pub",
                     private_key=PRIVATE)
    assert response.status_code == 302
    assert _conn(app, t)[0] == "https://cw.acme-onprem.example:8443"
    # The host is allowed with its port: the same name on another port is not.
    assert _post(client, site="cw.acme-onprem.example", company_id="acme", public_key="pub",
                 private_key=PRIVATE).status_code == 422
    host_id = re.search(r'/settings/connectwise/hosts/([0-9a-f-]{36})/remove', page).group(1)
    assert client.post(f"/settings/connectwise/hosts/{host_id}/remove",
                       data={"csrf_token": csrf_of(client)}).status_code == 302
    assert _audit(app, t, "connectwise.onprem")[-1][0] == "connectwise.onprem_host_removed"


def test_dns_rebinding_after_save_cannot_make_test_connection_reach_a_private_address(app, client, make_tenant,
                                                                                      resolver):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    host = f"cw.rebind.example:{port}"
    t = make_tenant()
    sign_in(client, t)
    try:
        # Public while the owner allows it and the admin saves it, loopback from then on.
        resolver.answers["cw.rebind.example"] = [[PUBLIC_IP], [PUBLIC_IP], ["127.0.0.1"]]
        assert _add_host(client, host).status_code == 302
        assert _post(client, site=host, company_id="acme", public_key="pub", private_key=PRIVATE).status_code == 302
        html = client.post("/settings/connectwise/test",
                           headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(client)}).get_data(as_text=True)
        assert "loopback" in html
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected to the private address
    finally:
        listener.close()


# -- the key-change rule and what is shown -------------------------------------------------------------------

@pytest.mark.parametrize("change", [{"company_id": "othercompany"}, {"site": "na.myconnectwise.net"}])
def test_changing_site_or_company_requires_the_private_key_again_and_saves_nothing(app, client, make_tenant,
                                                                                  fresh_sim, change):
    t = make_tenant()
    sign_in(client, t)
    assert _save(client, fresh_sim).status_code == 302
    before, audit_before = _conn(app, t), _audit(app, t)
    response = _save(client, fresh_sim, private_key="", **change)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    field = html.split('name="private_key"', 1)[1].split("</label>", 1)[0]
    assert "enter the private key again" in field.lower()
    assert _conn(app, t) == before and _audit(app, t) == audit_before


def test_a_site_change_with_both_keys_is_audited_with_before_and_after_and_no_key_values(app, client, make_tenant,
                                                                                       fresh_sim):
    t = make_tenant()
    sign_in(client, t)
    assert _save(client, fresh_sim).status_code == 302
    assert _save(client, fresh_sim, site="eu.myconnectwise.net", public_key="newpublic",
                 private_key=PRIVATE).status_code == 302
    action, before, after = _audit(app, t)[-1]
    assert action == "connectwise.site_changed"
    assert before == {"site": fresh_sim.url, "company_id": fresh_sim.company_id}
    assert after == {"site": "https://eu.myconnectwise.net", "company_id": fresh_sim.company_id,
                     "changed_keys": "public, private"}
    assert _conn(app, t) == ("https://eu.myconnectwise.net", fresh_sim.company_id, PRIVATE)


def test_no_private_key_character_appears_on_any_page_or_audit_row(app, client, make_tenant, fresh_sim,
                                                                   owner_engine):
    t = make_tenant()
    sign_in(client, t)
    assert _save(client, fresh_sim, site="na.myconnectwise.net", private_key=PRIVATE).status_code == 302
    page = client.get("/settings/connectwise/").get_data(as_text=True)
    assert _leaks(PRIVATE, page) == []
    assert re.search(r"Stored, saved \w", page) and "Leave empty to keep it" in page
    refused = _save(client, fresh_sim, site="na.myconnectwise.net", public_key="").get_data(as_text=True)
    assert _leaks(PRIVATE, refused) == []
    with owner_engine.begin() as conn:
        conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(t.id)})
        audit = str(conn.execute(text("select before, after from audit_log")).all())
    assert _leaks(PRIVATE, audit) == []


# -- the CLI applies the same rules --------------------------------------------------------------------------

def test_the_connect_cli_refuses_a_hostile_site_and_saves_nothing(app, make_tenant):
    t = make_tenant()
    result = app.test_cli_runner().invoke(args=[
        "connectwise", "connect", str(t.id), "--site", "169.254.169.254", "--company", "acme",
        "--public-key", "pub", "--private-key", PRIVATE])
    assert result.exit_code != 0 and "link-local" in result.output
    assert PRIVATE not in result.output
    assert _conn(app, t) is None


def test_the_connect_cli_refuses_a_new_company_without_the_private_key(app, make_tenant, fresh_sim):
    t = make_tenant()
    args = ["connectwise", "connect", str(t.id), "--site", fresh_sim.url, "--public-key", fresh_sim.public_key]
    result = app.test_cli_runner().invoke(args=[*args, "--company", fresh_sim.company_id,
                                                "--private-key", fresh_sim.private_key])
    assert result.exit_code == 0, result.output
    result = app.test_cli_runner().invoke(args=[*args, "--company", "othercompany", "--private-key", ""])
    assert result.exit_code != 0 and "private key again" in result.output
    assert _conn(app, t)[1] == fresh_sim.company_id


def test_the_allow_host_cli_vets_the_addresses_and_audits(app, make_tenant, resolver):
    t = make_tenant()
    resolver.answers["cw.private.example"] = [["192.168.7.7"]]
    result = app.test_cli_runner().invoke(args=["connectwise", "allow-host", str(t.id), "cw.private.example"])
    assert result.exit_code != 0 and "private" in result.output
    result = app.test_cli_runner().invoke(args=["connectwise", "allow-host", str(t.id), "cw.public.example"])
    assert result.exit_code == 0, result.output
    assert [a[0] for a in _audit(app, t, "connectwise.onprem")] == ["connectwise.onprem_host_added"]
