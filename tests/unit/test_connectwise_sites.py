"""Which ConnectWise hosts we accept and where we connect: strict site parsing, the cloud list, address vetting,
and a transport that dials only the address it checked (a stubbed resolver and socket layer stand in for DNS)."""

from __future__ import annotations

import httpcore
import httpx
import pytest

from app.connectwise import errors
from app.connectwise.client import Client, Credentials, normalise_site
from app.connectwise.sites import PinnedTransport, SitePolicy

CLIENT_ID = "6f1b5c9e-0000-4000-8000-000000000001"
PUBLIC_IP = "93.184.215.14"


def public(host: str, port: int) -> list[str]:
    return [PUBLIC_IP]


def refusal(raw: str, *, allow_loopback: bool = False, on_prem: frozenset[str] = frozenset(),
            resolver=public) -> str | None:  # type: ignore[no-untyped-def]
    """The message a person would see for ``raw`` in production, or None when it is accepted."""
    try:
        site = normalise_site(raw, allow_loopback)
        SitePolicy(allow_loopback=allow_loopback, on_prem=on_prem, resolver=resolver).check(site)
    except errors.ConnectWiseError as exc:
        return str(exc)
    return None


HOSTILE = [
    ("169.254.169.254", "link-local"),
    ("https://169.254.169.254/", "link-local"),
    ("https://127.0.0.1:6379", "loopback"),
    ("http://127.0.0.1:8000", "HTTPS"),
    ("localhost", "loopback"),
    ("https://[::1]:8443", "loopback"),
    ("https://[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:169.254.169.254]", "link-local"),
    ("10.0.0.5", "private"),
    ("https://10.1.2.3:8443", "private"),
    ("172.16.4.4", "private"),
    ("192.168.1.10", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("[fd00::1]", "unique local"),
    ("[fe80::1]", "link-local"),
    ("[ff02::1]", "multicast"),
    ("224.0.0.1", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 (a refused input, never bound)
    ("[::]", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("http://2852039166", "four plain numbers"),
    ("2852039166", "four plain numbers"),
    ("0xA9FEA9FE", "four plain numbers"),
    ("0251.0376.0251.0376", "four plain numbers"),
    ("169.254.43518", "four plain numbers"),
    ("127.1", "four plain numbers"),
    ("0x7f.0.0.1", "four plain numbers"),
    ("intranet", "full host name"),
    ("cw.corp.example.com", "not a ConnectWise cloud site"),
    ("na.myconnectwise.net.evil.example", "not a ConnectWise cloud site"),
    ("evilmyconnectwise.net", "not a ConnectWise cloud site"),
    ("a.b.myconnectwise.net", "not a ConnectWise cloud site"),
    ("https://na.myconnectwise.net:6379", "port 443"),
    ("https://na.myconnectwise.net@evil.example", "not a ConnectWise site address"),
    ("not a url", "not a ConnectWise site address"),
    ("https://", "not a ConnectWise site address"),
    ("ftp://x", "not a ConnectWise site address"),
    ("https://na.myconnectwise.net:99999", "port"),
    ("https://[fe80::1%25eth0]", "not a ConnectWise site address"),
    ("https://na.myconnectwise.net/v4_6_release/apis", "without a path"),
    ("", "Enter your ConnectWise site"),
]


@pytest.mark.parametrize("raw,message", HOSTILE, ids=[h[0] or "empty" for h in HOSTILE])
def test_each_hostile_site_is_refused_in_production_with_its_reason(raw, message):
    got = refusal(raw)
    assert got is not None, f"{raw!r} was accepted"
    assert message in got


CLOUD = ["na.myconnectwise.net", "eu.myconnectwise.net", "au.myconnectwise.net", "aus.myconnectwise.net",
         "za.myconnectwise.net", "api-na.myconnectwise.net", "api-eu.myconnectwise.net", "api-au.myconnectwise.net",
         "api-za.myconnectwise.net", "sandbox-na.myconnectwise.net", "staging.connectwisedev.com",
         "api-staging.connectwisedev.com", "https://NA.myconnectwise.net/", "https://eu.myconnectwise.net:443"]


@pytest.mark.parametrize("raw", CLOUD)
def test_connectwise_cloud_hosts_are_accepted_in_production(raw):
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("a cloud host is allowed by name, without a lookup at save time")

    assert refusal(raw, resolver=no_dns) is None


def test_ip_literals_come_back_canonical_and_ipv6_keeps_its_brackets():
    assert normalise_site("https://[2606:4700:4700:0:0:0:0:1111]:8443", False) == "https://[2606:4700:4700::1111]:8443"
    assert normalise_site("[2606:4700:4700::1111]", False) == "https://[2606:4700:4700::1111]"
    assert normalise_site("https://93.184.215.14:8443/", False) == "https://93.184.215.14:8443"


def test_loopback_http_stays_allowed_for_the_simulator_outside_production():
    assert refusal("http://127.0.0.1:8000", allow_loopback=True) is None
    assert normalise_site("http://127.0.0.1:8000", True) == "http://127.0.0.1:8000"


def test_an_on_prem_host_is_accepted_only_when_listed_and_only_if_it_resolves_to_public_addresses():
    assert "not a ConnectWise cloud site" in refusal("cw.acme.example")
    listed = frozenset({"cw.acme.example"})
    assert refusal("cw.acme.example", on_prem=listed) is None
    assert "private" in refusal("cw.acme.example", on_prem=listed, resolver=lambda h, p: [PUBLIC_IP, "10.9.8.7"])
    assert "carrier-grade NAT" in refusal("cw.acme.example", on_prem=listed, resolver=lambda h, p: ["100.100.1.1"])
    assert "loopback" in refusal("cw.acme.example", on_prem=listed, resolver=lambda h, p: ["::ffff:127.0.0.1"])
    # Loopback for the simulator means the literal address, never a name that happens to resolve there.
    assert "loopback" in refusal("cw.acme.example", on_prem=listed, allow_loopback=True,
                                 resolver=lambda h, p: ["127.0.0.1"])


# -- the transport: one lookup per connection, dial the vetted address, keep the name for Host and TLS --------

class FakeStream(httpcore.NetworkStream):
    """Answers one HTTP/1.1 request with a small JSON body and remembers what it was sent."""

    def __init__(self, log: dict) -> None:
        self.log = log
        self._sent = b""
        self._answered = False

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._sent += buffer
        self.log["sent"] = self._sent

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._answered:
            return b""
        self._answered = True
        body = b'{"Codebase": "v4_6_release/"}'
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    def close(self) -> None:
        pass

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):  # type: ignore[no-untyped-def]
        self.log["sni"] = server_hostname
        return self

    def get_extra_info(self, info: str):  # type: ignore[no-untyped-def]
        return None


class RecordingBackend(httpcore.NetworkBackend):
    """Stands in for the socket layer: records which address each connection dials."""

    def __init__(self) -> None:
        self.dialled: list[tuple[str, int]] = []
        self.log: dict = {}

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        self.dialled.append((host, port))
        return FakeStream(self.log)

    def sleep(self, seconds: float) -> None:
        pass


def _client(policy: SitePolicy, backend: RecordingBackend, site: str = "https://cw.acme.example") -> Client:
    return Client(Credentials(site, "acme", "p", "q"), CLIENT_ID, site_policy=policy, max_retries=0,
                  transport=PinnedTransport(policy, backend=backend))


def test_the_client_dials_the_vetted_address_and_keeps_the_name_for_host_and_sni():
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return [PUBLIC_IP] if len(calls) == 1 else ["10.0.0.1"]

    backend = RecordingBackend()
    policy = SitePolicy(on_prem=frozenset({"cw.acme.example"}), resolver=rebinding)
    with _client(policy, backend) as cw:
        assert cw.api_base.endswith("/v4_6_release/apis/3.0")
    assert calls == ["cw.acme.example"]  # one lookup for the connection, none between check and connect
    assert backend.dialled == [(PUBLIC_IP, 443)]
    assert b"Host: cw.acme.example\r\n" in backend.log["sent"]
    assert backend.log["sni"] == "cw.acme.example"


def test_dns_rebinding_to_a_private_address_never_reaches_a_socket():
    answers = iter([[PUBLIC_IP], ["10.0.0.1"], ["169.254.169.254"]])

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    policy = SitePolicy(on_prem=frozenset({"cw.acme.example"}), resolver=rebinding)
    policy.check("https://cw.acme.example")  # what saving the site saw: a public address
    for _ in range(2):  # every new client and connection looks again
        backend = RecordingBackend()
        with _client(policy, backend) as cw, pytest.raises(errors.InvalidSite, match="private|link-local"):
            cw.api_base  # noqa: B018
        assert backend.dialled == []


def test_a_new_client_re_checks_the_host_against_the_policy():
    backend = RecordingBackend()
    with pytest.raises(errors.InvalidSite, match="not a ConnectWise cloud site"):
        _client(SitePolicy(resolver=public), backend)
    assert backend.dialled == []


def test_a_connection_to_a_host_outside_the_policy_is_refused_even_when_a_link_points_there():
    backend = RecordingBackend()
    policy = SitePolicy(on_prem=frozenset({"cw.acme.example"}), resolver=public)
    with httpx.Client(transport=PinnedTransport(policy, backend=backend)) as http, \
            pytest.raises(errors.InvalidSite, match="not a ConnectWise cloud site"):
        http.get("https://metadata.internal.example/latest/meta-data/")
    assert backend.dialled == []
