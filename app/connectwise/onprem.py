"""On-premises ConnectWise hosts an owner allowed for the tenant (list, add after vetting its addresses, remove,
each audited) and the tenant's site policy built from them."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.connectwise import errors
from app.connectwise.models import OnPremHost
from app.connectwise.sites import Resolver, SitePolicy, SiteRefused, is_cloud_host, parse_site, resolve

TARGET = "connectwise_onprem_host"


def list_hosts(session: Session) -> list[OnPremHost]:
    return list(session.execute(select(OnPremHost).order_by(OnPremHost.host)).scalars())


def site_policy(session: Session | None, *, allow_loopback: bool, resolver: Resolver | None = None) -> SitePolicy:
    """The tenant's policy: cloud hosts, its owner-allowed hosts, loopback only when ``allow_loopback``.

    Without a session (a detached connection) no on-premises host is allowed: fail closed.
    """
    hosts = frozenset(session.execute(select(OnPremHost.host)).scalars()) if session is not None else frozenset()
    return SitePolicy(allow_loopback=allow_loopback, on_prem=hosts, resolver=resolver or resolve)


def add_host(session: Session, tenant_id: uuid.UUID | str, raw: str, *, actor: Actor, origin: Origin | None = None,
             resolver: Resolver | None = None) -> OnPremHost:
    """Allow ``raw`` (``host`` or ``host:port``) once every address it resolves to is public; raises InvalidSite."""
    site = parse_site(raw)
    if site.scheme != "https":
        raise errors.InsecureSite("An on-premises ConnectWise must be reached over HTTPS; plain http:// is refused")
    if is_cloud_host(site.host):
        raise SiteRefused(f"{site.host} is a ConnectWise cloud site; cloud sites are allowed already")
    if site.is_loopback:
        raise SiteRefused(f"{site.host} is a loopback address; Better Invoice connects only to public hosts")
    policy = SitePolicy(on_prem=frozenset({site.netloc}), resolver=resolver or resolve)
    policy.check_name(site)
    addresses = policy.vetted_addresses(site.host, site.effective_port)
    if session.execute(select(OnPremHost.id).where(OnPremHost.host == site.netloc)).first() is not None:
        raise SiteRefused(f"{site.netloc} is allowed already")
    host = OnPremHost(id=uuid.uuid4(), tenant_id=uuid.UUID(str(tenant_id)), host=site.netloc)
    session.add(host)
    session.flush()
    record(session, host.tenant_id, actor, "connectwise.onprem_host_added", target_type=TARGET, target_id=host.id,
           after={"host": site.netloc, "addresses": addresses}, origin=origin)
    return host


def remove_host(session: Session, host_id: uuid.UUID, *, actor: Actor, origin: Origin | None = None) -> bool:
    """Stop allowing a host; a connection that uses it fails from its next client on."""
    host = session.get(OnPremHost, host_id)
    if host is None:
        return False
    record(session, host.tenant_id, actor, "connectwise.onprem_host_removed", target_type=TARGET,
           target_id=host.id, before={"host": host.host}, origin=origin)
    session.delete(host)
    session.flush()
    return True
