"""Session-wide local OpenID providers for the SSO tests: one Google-style and one Microsoft-style (multi-tenant)
`oidc-provider` under node, with test accounts and a confidential client each.

Load with ``pytest_plugins = ["tests.oidc_fixtures"]`` (or ``from tests.oidc_fixtures import *``). The fixture
``oidc_provider`` gives ``OidcProviders``: ``.google`` / ``.microsoft`` handles, ``.config_values()`` for
``Config(**...)``, and the account data below. ``follow_provider(auth_url)`` plays the browser at the provider
(the automatic interaction signs in the ``login_hint`` account) and returns the URL it redirects back to.

Redirect URIs: each client is registered as a "native" client with ``http://localhost/sign-in/sso/<p>/callback``
and ``http://127.0.0.1/sign-in/sso/<p>/callback``; oidc-provider then accepts those loopback URIs on any port
(RFC 8252 section 7.3), which covers the Flask test client (http://localhost) and a browser test on
http://127.0.0.1:<port>.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from devtools.oidc_provider import OidcProvider, start

AT = chr(64)  # keeps literal email addresses out of the source (an output filter mangles them)

GOOGLE_CLIENT_ID = "better-invoice-google-test.apps.example"
MICROSOFT_CLIENT_ID = "6d0c8a52-1f1e-4c55-9b7a-2f0e3c1b5a11"
OTHER_CLIENT_ID = "some-other-app"  # a second client at the Google-style provider, for audience tests

TENANT_A = "3f2a8c1e-5b7d-4e9a-9c4f-1a2b3c4d5e6f"  # Contoso
TENANT_B = "7c9e6679-7425-40de-944b-e07fc1f90ae7"  # Fabrikam

GOOGLE_ACCOUNTS: dict[str, dict[str, Any]] = {
    "ann": {"sub": "104857600000000000001", "email": f"Ann.Admin{AT}gmail.example", "email_verified": True,
            "name": "Ann Admin"},
    "ben": {"sub": "104857600000000000002", "email": f"ben{AT}unverified.example", "email_verified": False,
            "name": "Ben Unverified"},
    "nomail": {"sub": "104857600000000000003", "name": "No Mail"},
}
MICROSOFT_ACCOUNTS: dict[str, dict[str, Any]] = {
    "cara": {"sub": "AAAAAAAAAAAAAAAAAAAAAMcara-pairwise-sub", "oid": "0f1e2d3c-0000-4000-8000-00000000ca4a",
             "tid": TENANT_A, "email": f"Cara{AT}Contoso.example", "xms_edov": True, "name": "Cara Contoso",
             "preferred_username": f"cara{AT}contoso.example"},
    "dan": {"sub": "AAAAAAAAAAAAAAAAAAAAAMdan-pairwise-sub", "oid": "0f1e2d3c-0000-4000-8000-000000000da2",
            "tid": TENANT_B, "email": f"dan{AT}fabrikam.example", "xms_edov": False, "name": "Dan Fabrikam"},
    "fay": {"sub": "AAAAAAAAAAAAAAAAAAAAAMfay-pairwise-sub", "oid": "0f1e2d3c-0000-4000-8000-000000000fa7",
            "tid": TENANT_B, "email": f"fay{AT}fabrikam.example", "name": "Fay (no xms_edov claim)"},
    # Claims tenant A but is signed by tenant B's issuer: a token whose iss does not match its own tid.
    "eve": {"sub": "AAAAAAAAAAAAAAAAAAAAAMeve-pairwise-sub", "oid": "0f1e2d3c-0000-4000-8000-000000000e7e",
            "tid": TENANT_A, "issuer_tenant": TENANT_B, "email": f"eve{AT}contoso.example", "xms_edov": True,
            "name": "Eve"},
}


def redirect_uris(provider: str) -> list[str]:
    return [f"http://localhost/sign-in/sso/{provider}/callback", f"http://127.0.0.1/sign-in/sso/{provider}/callback"]


@dataclass
class OidcProviders:
    google: OidcProvider
    microsoft: OidcProvider
    google_secret: str
    microsoft_secret: str
    other_secret: str

    def config_values(self) -> dict[str, str]:
        """Settings that point the app's SSO at these providers (pass to ``Config(**...)``)."""
        return {
            "GOOGLE_CLIENT_ID": GOOGLE_CLIENT_ID,
            "GOOGLE_CLIENT_SECRET": self.google_secret,
            "GOOGLE_METADATA_URL": self.google.metadata_url,
            "MICROSOFT_CLIENT_ID": MICROSOFT_CLIENT_ID,
            "MICROSOFT_CLIENT_SECRET": self.microsoft_secret,
            "MICROSOFT_METADATA_URL": self.microsoft.metadata_url,
        }


def google_config(secret: str, other_secret: str, **extra: Any) -> dict[str, Any]:
    return {
        "style": "google",
        "clients": [
            {"client_id": GOOGLE_CLIENT_ID, "client_secret": secret, "redirect_uris": redirect_uris("google"),
             "application_type": "native"},
            {"client_id": OTHER_CLIENT_ID, "client_secret": other_secret, "redirect_uris": redirect_uris("google"),
             "application_type": "native"},
        ],
        "accounts": GOOGLE_ACCOUNTS,
        "discovery_variants": {"wrong-issuer": {"issuer": "https://accounts.google.example"},
                               "foreign-keys": {"foreign_keys": True}},
        **extra,
    }


def microsoft_config(secret: str, **extra: Any) -> dict[str, Any]:
    return {
        "style": "microsoft",
        "clients": [{"client_id": MICROSOFT_CLIENT_ID, "client_secret": secret,
                     "redirect_uris": redirect_uris("microsoft"), "application_type": "native"}],
        "accounts": MICROSOFT_ACCOUNTS,
        "discovery_variants": {"wrong-issuer": {"issuer": "https://login.microsoftonline.example/{tenantid}/v2.0"},
                               "foreign-keys": {"foreign_keys": True}},
        **extra,
    }


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProviders]:
    secrets_ = {k: secrets.token_urlsafe(24) for k in ("google", "microsoft", "other")}
    google = start(google_config(secrets_["google"], secrets_["other"]))
    try:
        microsoft = start(microsoft_config(secrets_["microsoft"]))
    except BaseException:
        google.stop()
        raise
    try:
        yield OidcProviders(google, microsoft, secrets_["google"], secrets_["microsoft"], secrets_["other"])
    finally:
        google.stop()
        microsoft.stop()


MAX_PROVIDER_HOPS = 10


def follow_provider(auth_url: str, http: httpx.Client | None = None) -> str:
    """Follow the provider's redirects from ``auth_url`` until it sends the browser elsewhere; return that URL.

    Pass the same ``http`` client to keep the provider's cookies between sign-ins (one browser).
    """
    own = http is None
    client = http or httpx.Client(timeout=10)
    provider_origin = urlsplit(auth_url).netloc
    url = auth_url
    try:
        for _ in range(MAX_PROVIDER_HOPS):
            response = client.get(url, follow_redirects=False)
            if response.status_code not in (301, 302, 303, 307):
                raise AssertionError(f"provider answered {response.status_code} at {url.split('?')[0]}: "
                                     f"{response.text[:300]}")
            url = urljoin(url, response.headers["location"])
            if urlsplit(url).netloc != provider_origin:
                return url
        raise AssertionError(f"provider still redirecting after {MAX_PROVIDER_HOPS} hops")
    finally:
        if own:
            client.close()


__all__ = ["AT", "GOOGLE_ACCOUNTS", "GOOGLE_CLIENT_ID", "MICROSOFT_ACCOUNTS", "MICROSOFT_CLIENT_ID",
           "OTHER_CLIENT_ID", "TENANT_A", "TENANT_B", "OidcProviders", "follow_provider", "google_config",
           "microsoft_config", "oidc_provider", "redirect_uris"]
