"""Which hosts Better Invoice talks to as "ConnectWise", and how it reaches them.

Owns: strict parsing of a site address (canonical IP literals only, IPv6 brackets kept), the ConnectWise cloud
allow-list, the policy for on-premises hosts an owner allowed (resolved, and refused unless every address is
public), and a transport that dials only the address it just vetted, so no second DNS lookup can happen between
the check and the connection (the hostname still drives the Host header, TLS SNI and certificate checks).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpcore
import httpx

from app.connectwise import errors

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

CLOUD_DOMAINS = ("myconnectwise.net", "connectwisedev.com")
# ConnectWise's published cloud sites and their API hosts; the one-label wildcard below covers them and sandboxes.
CLOUD_HOSTS = frozenset({
    "na.myconnectwise.net", "eu.myconnectwise.net", "au.myconnectwise.net", "aus.myconnectwise.net",
    "za.myconnectwise.net", "staging.connectwisedev.com", "api-na.myconnectwise.net", "api-eu.myconnectwise.net",
    "api-au.myconnectwise.net", "api-aus.myconnectwise.net", "api-za.myconnectwise.net",
    "api-staging.connectwisedev.com",
})
NOT_A_SITE = "That is not a ConnectWise site address (expected e.g. na.myconnectwise.net)"
NOT_CANONICAL = ("Write an IP address as four plain numbers, e.g. 203.0.113.10 (decimal, hex, octal and short "
                 "forms are refused)")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_ULA = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class SiteRefused(errors.InvalidSite):
    """A well-formed site whose host or address we will not connect to."""


class NameNotFound(SiteRefused):
    """The host is not in DNS: at save time a bad site; when connecting, an unreachable one."""


@dataclass(frozen=True)
class Site:
    scheme: str
    host: str  # lower-case name, dotted quad, or compressed IPv6 without brackets
    port: int | None

    @property
    def ip(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    @property
    def effective_port(self) -> int:
        return self.port or (443 if self.scheme == "https" else 80)

    @property
    def is_loopback(self) -> bool:
        ip = self.ip
        return self.host == "localhost" or (ip is not None and _unwrap(ip).is_loopback)


def parse_site(raw: str) -> Site:
    """What a person typed, as scheme, host and port; refuses anything that is not plainly one host."""
    raw = (raw or "").strip()
    if not raw:
        raise errors.InvalidSite("Enter your ConnectWise site, e.g. na.myconnectwise.net")
    if len(raw) > 300 or any(c.isspace() or ord(c) < 32 or c == "\\" for c in raw):
        raise errors.InvalidSite(NOT_A_SITE)
    raw = raw.rstrip("/")
    if "://" not in raw:
        raw = "https://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        if "Port" in str(exc) or "port" in str(exc):
            raise errors.InvalidSite("The port must be a number from 1 to 65535") from exc
        raise errors.InvalidSite(NOT_A_SITE) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc or \
            parts.netloc.endswith(":"):
        raise errors.InvalidSite(NOT_A_SITE)
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in raw or "#" in raw:
        raise errors.InvalidSite("Enter only the site host (e.g. na.myconnectwise.net), without a path")
    if port == 0:
        raise errors.InvalidSite("The port must be a number from 1 to 65535")
    if port == {"https": 443, "http": 80}[parts.scheme]:
        port = None  # one spelling per site, so "host:443" and "host" are the same allowed host
    if parts.netloc.startswith("["):
        host = _ipv6_literal(parts.hostname)
    else:
        host = _name_or_ipv4(parts.hostname)
    return Site(parts.scheme, host, port)


def _ipv6_literal(host: str) -> str:
    try:
        ip = ipaddress.IPv6Address(host)
    except ValueError as exc:
        raise errors.InvalidSite(NOT_A_SITE) from exc
    if ip.scope_id:
        raise errors.InvalidSite(NOT_A_SITE)
    return ip.compressed


def _name_or_ipv4(host: str) -> str:
    labels = host.split(".")
    # A numeric last label makes URL parsers read the whole host as an IPv4 address in some form (WHATWG).
    if _NUMERIC_LABEL.match(labels[-1]):
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise errors.InvalidSite(NOT_CANONICAL) from exc
        if str(ip) != host:
            raise errors.InvalidSite(NOT_CANONICAL)
        return host
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise errors.InvalidSite(NOT_A_SITE)
    if len(labels) < 2 and host != "localhost":
        raise errors.InvalidSite("Enter the full host name, e.g. na.myconnectwise.net or cw.example.com")
    return host


def is_cloud_host(host: str) -> bool:
    """``<one label>.myconnectwise.net`` or ``<one label>.connectwisedev.com``."""
    label, _, domain = host.lower().partition(".")
    return host.lower() in CLOUD_HOSTS or (domain in CLOUD_DOMAINS and bool(_LABEL.match(label)))


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), else the address itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return ip.ipv4_mapped
        if ip.sixtofour:
            return ip.sixtofour
        if ip.teredo:
            return ip.teredo[1]
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_refusal(ip: IPAddress) -> str | None:
    """Why we never connect to ``ip`` (e.g. "a private"), or None for a public address."""
    inner = _unwrap(ip)
    checks = (
        ("an unspecified", lambda a: a.is_unspecified), ("a loopback", lambda a: a.is_loopback),
        ("a link-local", lambda a: a.is_link_local), ("a multicast", lambda a: a.is_multicast),
        ("a carrier-grade NAT (100.64.0.0/10)", lambda a: a in _CGNAT),
        ("a unique local (fc00::/7)", lambda a: a in _ULA), ("a reserved", lambda a: a.is_reserved),
        ("a private", lambda a: a.is_private), ("a non-public", lambda a: not a.is_global),
    )
    for candidate in dict.fromkeys((inner, ip)):
        for reason, test in checks:
            if test(candidate):
                return reason
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (the production resolver)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise NameNotFound(f"Could not find {host} in DNS; check the spelling") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class SitePolicy:
    """Which hosts a tenant's client may reach: cloud hosts, the owner's on-premises hosts, loopback outside
    production. ``listed_only=False`` accepts any name but still vets every address (clients built by hand)."""

    allow_loopback: bool = False
    on_prem: frozenset[str] = frozenset()  # netlocs, as Site.netloc writes them
    listed_only: bool = True
    resolver: Resolver = field(default=resolve, compare=False)

    def check(self, site_url: str) -> Site:
        """The save-time check: by name, then (for an on-premises host) every address it resolves to."""
        site = parse_site(site_url)
        self.check_name(site)
        if not site.is_loopback and not is_cloud_host(site.host):
            self.vetted_addresses(site.host, site.effective_port)
        return site

    def check_name(self, site: Site) -> None:
        """Refuse a host we would never connect to, without a lookup."""
        if site.is_loopback:
            if self.allow_loopback:
                return
            raise SiteRefused(f"{site.host} is a loopback address; Better Invoice connects only to public hosts")
        ip = site.ip
        reason = address_refusal(ip) if ip is not None else None
        if reason:
            raise SiteRefused(f"{site.host} is {reason} address; Better Invoice connects only to public hosts")
        if is_cloud_host(site.host):
            if site.scheme != "https" or site.effective_port != 443:
                raise SiteRefused("ConnectWise cloud sites answer on HTTPS port 443 only; remove the port")
            return
        if self.listed_only and site.netloc not in self.on_prem:
            raise SiteRefused(f"{site.netloc} is not a ConnectWise cloud site. If your ConnectWise runs on your own "
                              "server, an owner can allow its host under On-premises host.")

    def vetted_addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and return its addresses, all public (or loopback for a loopback site)."""
        site = Site("https", host, port)
        if site.is_loopback and self.allow_loopback:
            return ["127.0.0.1"] if host == "localhost" else [host]
        answers = [host] if site.ip is not None else self.resolver(host, port)
        if not answers:
            raise NameNotFound(f"Could not find {host} in DNS; check the spelling")
        vetted = []
        for answer in answers:
            try:
                ip = ipaddress.ip_address(answer)
            except ValueError as exc:
                raise SiteRefused(f"{host} resolves to an address we cannot check ({answer})") from exc
            reason = address_refusal(ip)
            if reason:
                raise SiteRefused(f"{host} resolves to {ip}, {reason} address; Better Invoice connects only to "
                                  "public addresses")
            vetted.append(str(ip))
        return vetted

    def allows_connection(self, host: str, port: int) -> None:
        """The per-connection name check (the host a request is about to open, e.g. after an ``api-`` prefix)."""
        self.check_name(Site("https", host, None if port == 443 else port))


class _PinnedBackend(httpcore.NetworkBackend):
    """Every new TCP connection: check the name, resolve once, vet, dial those very addresses."""

    def __init__(self, policy: SitePolicy, inner: httpcore.NetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[tuple] | None = None) -> httpcore.NetworkStream:
        self._policy.allows_connection(host, port)
        failure: Exception | None = None
        for address in self._policy.vetted_addresses(host, port):
            try:
                return self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"could not connect to {host}")

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[tuple] | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never a ConnectWise site")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """An httpx transport whose connections go only where ``policy`` allows, to the addresses it vetted."""

    def __init__(self, policy: SitePolicy, *, verify: ssl.SSLContext | bool = True,
                 limits: httpx.Limits | None = None, backend: httpcore.NetworkBackend | None = None) -> None:
        # httpx offers no way to pass a network backend, so the pool is built here instead of by the parent
        # (whose constructor only builds a pool); no proxy from the environment, which would dial on our behalf.
        ssl_context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify,
                                                                                                 trust_env=False)
        limits = limits or httpx.Limits(max_connections=8)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(policy, backend))
