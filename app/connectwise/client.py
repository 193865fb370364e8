"""The one ConnectWise PSA client: base URL discovery, auth, retries, paging, a per-tenant cache, a site ceiling.

Services create it with explicit arguments (credentials, client id, tenant id, Redis); it never reads Flask.
With ``note_health`` (the tenant client factory sets it) each call's outcome is the tenant's connection state
(``app.connectwise.health``): an answer, or a failure that says the connection is broken (refused keys, no answer,
a server error), so no page goes on reading "Connected" after any call found it broken.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import random
import re
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from opentelemetry import trace

from app.connectwise import deadline as call_deadline
from app.connectwise import errors, health
from app.connectwise.cache import ResponseCache, collection
from app.connectwise.permissions import modules as permission_modules
from app.connectwise.ratelimit import BudgetExhausted, RequestBudget
from app.connectwise.sites import NameNotFound, PinnedTransport, SitePolicy, is_cloud_host, parse_site

log = logging.getLogger(__name__)
API_VERSION = "2025.1"
PAGE_SIZE = 1000
IN_CHUNK = 200  # ids per `invoice/id in (...)`: keeps URLs well under ConnectWise's ~2,000 characters
_COMPANY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')

# Which ConnectWise security-role permission a path needs, for "the API member lacks ..." messages: the same table
# the connection form lists and "Test connection" checks.
MODULES = {**permission_modules(), "system/info": "System"}


@dataclass(frozen=True)
class Credentials:
    site: str  # https://na.myconnectwise.net (scheme + host[:port])
    company_id: str
    public_key: str
    private_key: str

    def __repr__(self) -> str:  # never print the keys
        return f"Credentials(site={self.site!r}, company_id={self.company_id!r}, keys=***)"


def normalise_site(raw: str, allow_loopback_http: bool) -> str:
    """Turn what a person typed into ``https://host[:port]``; refuse plain HTTP except loopback outside production.

    Syntax only (see ``sites.parse_site``): which hosts may be reached is the ``SitePolicy``'s call.
    """
    site = parse_site(raw)
    if site.scheme == "http" and not (allow_loopback_http and site.is_loopback):
        raise errors.InsecureSite("ConnectWise must be reached over HTTPS; plain http:// is refused")
    return site.url


def check_company_id(company_id: str) -> str:
    company_id = (company_id or "").strip()
    if not _COMPANY_ID.match(company_id):
        raise errors.InvalidSite("The company id is the short name you sign in to ConnectWise with (letters, digits)")
    return company_id


class Client:
    """Talks to one tenant's ConnectWise. Thread-safe; use ``with Client(...) as cw``."""

    def __init__(self, credentials: Credentials, client_id: str, *, tenant_id: str | None = None, redis: Any = None,
                 timeout: float = 10.0, max_retries: int = 4, cache_ttl: int = 60, allow_loopback_http: bool = False,
                 rate_limiter: RequestBudget | None = None, concurrency: int = 4, backoff_base: float = 0.5,
                 max_backoff: float = 20.0, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, max_wait: float | None = None,
                 deadline: float = 120.0, site_policy: SitePolicy | None = None,
                 verify: ssl.SSLContext | bool = True, note_health: bool = False):
        self.site = normalise_site(credentials.site, allow_loopback_http)
        # Checked again for every client (a host the owner removed stops working at once) and, by the pinned
        # transport, for every connection; without a policy any name passes but every address is still vetted.
        policy = site_policy or SitePolicy(allow_loopback=allow_loopback_http, listed_only=False)
        policy.check_name(parse_site(self.site))
        self.company_id = check_company_id(credentials.company_id)
        if not client_id:
            raise errors.ConnectWiseError("CONNECTWISE_CLIENT_ID is not configured")
        token = base64.b64encode(
            f"{self.company_id}+{credentials.public_key}:{credentials.private_key}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "clientId": client_id,
                         "Accept": f"application/vnd.connectwise.com+json; version={API_VERSION}",
                         "Content-Type": "application/json"}
        self.tenant_id, self.redis, self.timeout = tenant_id, redis, timeout
        self.max_retries, self.cache_ttl, self.concurrency = max_retries, cache_ttl, concurrency
        self.backoff_base, self.max_backoff, self._sleep = backoff_base, max_backoff, sleep
        # max_wait: how long one call may wait for a budget slot (None: the budget's own default); deadline: how
        # long one call may take in all, waits, retries and back-off included.
        self.rate_limiter, self.max_wait, self.deadline = rate_limiter, max_wait, deadline
        self.note_health = note_health
        limits = httpx.Limits(max_connections=concurrency * 2)
        if transport is None:
            transport = PinnedTransport(policy, verify=verify, limits=limits)
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), transport=transport, follow_redirects=False,
                                  limits=limits)
        call_deadline.install(self._http)
        self._cache = ResponseCache(redis, tenant_id, self.company_id, cache_ttl)
        self._api_base: str | None = None
        self.requests_made = 0
        self._tracer = trace.get_tracer("app.connectwise")

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- base URL ------------------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """``{site with api- prefix on cloud}/{codebase}apis/3.0``, discovered once via /login/companyinfo."""
        if self._api_base is None:
            info = self._request("GET", f"{self.site}/login/companyinfo/{self.company_id}", auth=False)
            if not isinstance(info, dict) or not info.get("Codebase"):
                raise errors.InvalidSite(f"ConnectWise does not know the company id {self.company_id!r} on this site")
            codebase = str(info["Codebase"]).strip("/") + "/"
            if not re.match(r"^[A-Za-z0-9_.]+/$", codebase):
                raise errors.MalformedResponse("ConnectWise answered an unexpected codebase")
            parts = urlsplit(self.site)
            host = parts.netloc
            if codebase != "v4_6_release/" and is_cloud_host(parts.hostname or "") and \
                    not host.startswith("api-"):
                host = "api-" + host
            self._api_base = f"{parts.scheme}://{host}/{codebase}apis/3.0"
        return self._api_base

    def use_known_api_base(self, base: str) -> None:
        """Skip discovery with a base this site and company already answered (kept by the caller, e.g. in Redis)."""
        if not base.startswith(self.site.split("://")[0] + "://") or not base.endswith("/apis/3.0"):
            raise ValueError("not an API base of this kind of site")
        self._api_base = base

    # -- reads -----------------------------------------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any] | None = None, *, cache: bool = True) -> Any:
        url = self._url(path, params)
        key = self._cache.key(url) if cache else None
        cached = self._cache.get(key)
        if cached is not None:
            return cached[0]
        body = self._request("GET", url)
        self._cache.put(key, body)
        return body

    def get_all(self, path: str, *, conditions: str | None = None, fields: Sequence[str] | None = None,
                order_by: str | None = None, on_page: Callable[[int], None] | None = None,
                cache: bool = True) -> list[dict]:
        """Every record of a list endpoint, 1,000 a page, following the ``Link: rel=next`` header."""
        params: dict[str, Any] = {"pageSize": PAGE_SIZE, "page": 1}
        if conditions:
            params["conditions"] = conditions
        if fields:
            params["fields"] = ",".join(fields)
        if order_by:
            params["orderBy"] = order_by
        records: list[dict] = []
        url: str | None = self._url(path, params)
        while url:
            body, headers = self._cached_page(url, cache)
            if not isinstance(body, list):
                raise errors.MalformedResponse(f"ConnectWise answered {path} with something other than a list")
            records.extend(body)
            if on_page:
                on_page(len(records))
            url = self._next_link(url, headers, len(body))
        return records

    def count(self, path: str, conditions: str | None = None) -> int:
        body = self.get(f"{path.rstrip('/')}/count", {"conditions": conditions} if conditions else None)
        if not isinstance(body, dict) or not isinstance(body.get("count"), int):
            raise errors.MalformedResponse(f"ConnectWise answered {path}/count without a count")
        return body["count"]

    def patch(self, path: str, operations: list[dict], *, idempotent: bool = False,
              stale: Sequence[str] = ()) -> Any:
        """Apply JSON-patch ``operations`` to the record at ``path``; the record as ConnectWise now has it.

        Retried like a read only when ``idempotent`` (the caller's word that repeating it changes nothing more,
        e.g. a status set to a fixed value). Otherwise only a request that certainly never reached ConnectWise
        (no connection, a 429) is retried; a timeout, a dropped connection or a 5xx raises ``WriteUncertain``.
        Whenever ConnectWise may have applied it, this tenant's cached reads of the record's collection (and of
        the ``stale`` collections the caller names) are dropped (see ``app.connectwise.cache``).
        """
        try:
            body = self._request("PATCH", self._url(path), json_body=operations, repeatable=idempotent)
        except errors.WriteUncertain:
            self._cache.invalidate(collection(path), *stale)
            raise
        self._cache.invalidate(collection(path), *stale)
        return body

    def post(self, path: str, body: dict) -> Any:
        """Create a record; the write rules of ``patch`` (never repeated once it may have reached ConnectWise)."""
        try:
            return self._request("POST", self._url(path), json_body=body, repeatable=False)
        finally:
            self._cache.invalidate(collection(path))

    def delete(self, path: str) -> None:
        """Delete the record at ``path``; repeating a delete changes nothing more, so it is retried like a read."""
        try:
            self._request("DELETE", self._url(path))
        finally:
            self._cache.invalidate(collection(path))

    def is_site_url(self, url: str) -> bool:
        """Whether ``url`` is on this client's own site: same scheme and host (the site's or its ``api-`` host)."""
        try:
            parts, site = urlsplit(url), urlsplit(self.site)
        except ValueError:
            return False
        hosts = {site.netloc.lower(), f"api-{site.netloc.lower()}"} if is_cloud_host(site.hostname or "") \
            else {site.netloc.lower()}
        return parts.scheme == site.scheme and parts.netloc.lower() in hosts and not parts.username

    def get_from_site(self, url: str) -> Any:
        """GET an absolute URL the site handed us (e.g. a callback's ``key_url``) with the clientId header but no
        API keys; refused with ``InvalidSite`` unless it is on this site (the transport still vets the address)."""
        if not self.is_site_url(url):
            raise errors.InvalidSite("That address is not on this workspace's ConnectWise site")
        return self._request("GET", url, auth=False, client_id=True)

    def parallel(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run independent calls with bounded concurrency; the first error wins."""
        if len(calls) <= 1:
            return [c() for c in calls]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(calls))) as pool:
            return list(pool.map(lambda c: c(), calls))

    # -- internals -------------------------------------------------------------------------------------------

    def _url(self, path: str, params: dict[str, Any] | None = None) -> str:
        url = f"{self.api_base}/{path.lstrip('/')}"
        return f"{url}?{urlencode(params)}" if params else url

    def _next_link(self, url: str, headers: dict[str, str], page_len: int) -> str | None:
        link = headers.get("link", "")
        match = _NEXT_LINK.search(link)
        if match:
            nxt = match.group(1)
            # Follow only links to the API we are talking to, never elsewhere.
            return nxt if urlsplit(nxt).netloc == urlsplit(self.api_base).netloc else None
        if link or page_len < PAGE_SIZE:
            return None
        # No Link header at all: keep going page by page until a short page.
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        query["page"] = str(int(query.get("page", "1")) + 1)
        return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"

    def _cached_page(self, url: str, cache: bool = True) -> tuple[Any, dict[str, str]]:
        key = self._cache.key(url) if cache else None
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        headers: dict[str, str] = {}
        body = self._request("GET", url, response_headers=headers)
        self._cache.put(key, body, headers)
        return body, headers

    def _request(self, method: str, url: str, *, auth: bool = True, json_body: Any = None,
                 response_headers: dict[str, str] | None = None, repeatable: bool = True,
                 client_id: bool = False) -> Any:
        """One call with retries; ``repeatable=False`` retries only what never reached ConnectWise."""
        try:
            body = self._attempts(method, url, auth, json_body, response_headers, repeatable, client_id)
        except errors.ConnectWiseError as exc:
            verdict = _connection_verdict(exc)
            if self.note_health and verdict is not None:
                health.observe(self.redis, self.tenant_id, verdict, "" if verdict else str(exc))
            raise
        if self.note_health and auth:  # discovery answers without the keys: it says nothing of them
            health.observe(self.redis, self.tenant_id, True)
        return body

    def _attempts(self, method: str, url: str, auth: bool, json_body: Any, response_headers: dict[str, str] | None,
                  repeatable: bool, client_id: bool) -> Any:
        endpoint = _endpoint(url)
        deadline = time.monotonic() + self.deadline
        attempt = 0
        while True:
            with self._tracer.start_as_current_span(f"connectwise {method} {endpoint}") as span:
                span.set_attribute("connectwise.endpoint", endpoint)
                span.set_attribute("http.request.method", method)
                span.set_attribute("connectwise.attempt", attempt)
                try:
                    body = self._once(method, url, auth, json_body, response_headers, span, deadline, client_id)
                    return body
                except errors.ConnectWiseError as exc:
                    span.set_attribute("connectwise.error", type(exc).__name__)
                    if not repeatable and exc.retryable and not getattr(exc, "unsent", False):
                        raise errors.WriteUncertain(
                            f"ConnectWise did not confirm the change to {endpoint} ({exc}); it may or may not have "
                            "been applied. Check the record in ConnectWise before trying again.", exc.status) from exc
                    if not exc.retryable or attempt >= self.max_retries:
                        raise
                    delay = self._delay(attempt, getattr(exc, "retry_after", None))
                    if time.monotonic() + delay >= deadline:
                        raise  # a retry could only start after the call's deadline: this answer is the last
                    log.info("connectwise %s %s: %s, retry %d in %.1fs", method, endpoint, type(exc).__name__,
                             attempt + 1, delay)
            attempt += 1
            self._sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), 60.0)
        return min(self.max_backoff, self.backoff_base * (2 ** attempt)) * random.uniform(0.5, 1.0)  # noqa: S311

    def _take_slot(self, budget: RequestBudget, deadline: float, span: Any) -> None:
        """A slot in this tenant's budget (and the host's), waited for no longer than allowed nor past the deadline."""
        allowed = budget.max_wait if self.max_wait is None else self.max_wait
        try:
            budget.acquire(self.site, self.company_id,
                                      max_wait=min(allowed, max(0.0, deadline - time.monotonic())))
        except BudgetExhausted as exc:
            span.set_attribute("connectwise.busy", True)
            raise errors.Busy(f"ConnectWise is busy for this account right now; try again in {exc.retry_after} s",
                              exc.retry_after) from exc

    def _once(self, method: str, url: str, auth: bool, json_body: Any, response_headers: dict[str, str] | None,
              span: Any, deadline: float, client_id: bool = False) -> Any:
        if self.rate_limiter is not None:
            self._take_slot(self.rate_limiter, deadline, span)
        headers = self._headers if auth else {"Accept": "application/json"}
        if client_id and not auth:
            headers = {**headers, "clientId": self._headers["clientId"]}
        left = deadline - time.monotonic()
        if left <= 0:
            raise errors.TimedOut(f"ConnectWise did not finish answering within {self.deadline:g} s")
        self.requests_made += 1
        try:
            # The per-read timeout bounds one silent wait; the deadline bounds the whole answer, however it trickles.
            with call_deadline.until(deadline):
                response = self._http.request(method, url, headers=headers, timeout=min(self.timeout, left),
                                              content=json.dumps(json_body) if json_body is not None else None)
        except httpx.ConnectTimeout as exc:
            raise _unsent(errors.Unreachable(_host(url), f"no answer within {min(self.timeout, left):g} s"),
                          True) from exc
        except httpx.TimeoutException as exc:
            failure: errors.ConnectWiseError
            if time.monotonic() + 0.05 >= deadline:
                failure = errors.TimedOut(f"ConnectWise did not finish answering within {self.deadline:g} s")
            else:
                failure = errors.TimedOut(f"ConnectWise did not answer within {self.timeout:g} s")
            raise _unsent(failure, isinstance(exc, httpx.PoolTimeout)) from exc
        except httpx.ConnectError as exc:
            raise _unsent(errors.Unreachable(_host(url), _connect_reason(exc)), True) from exc
        except NameNotFound as exc:
            # Found at save time, gone from DNS since: the site is unreachable, not a setting we refuse.
            raise _unsent(errors.Unreachable(_host(url), "its name is not in DNS (check the spelling)"), True) from exc
        except httpx.HTTPError as exc:
            failure = errors.Unavailable(f"Could not reach ConnectWise at {self.site} ({type(exc).__name__})")
            raise _unsent(failure, False) from exc
        span.set_attribute("http.response.status_code", response.status_code)
        if response_headers is not None:
            response_headers.update({k.lower(): v for k, v in response.headers.items()})
        if response.status_code >= 400:
            raise _error_for(response, _endpoint(url))
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise errors.MalformedResponse("ConnectWise sent a response that is not valid JSON") from exc


# Failures that still mean ConnectWise answered with these keys: a missing record, a refused value, a module the
# API member lacks (the dashboard's test report names that one); 429 and our own budget say nothing either way.
_ANSWERED = (errors.NotFound, errors.BadRequest, errors.PermissionMissing)
_SAYS_NOTHING = (errors.Throttled, errors.Busy)


def _connection_verdict(exc: errors.ConnectWiseError) -> bool | None:
    """What a failed call says of the connection: True (it answered), False (broken), None (nothing)."""
    if isinstance(exc, errors.WriteUncertain) and isinstance(exc.__cause__, errors.ConnectWiseError):
        exc = exc.__cause__
    if isinstance(exc, _SAYS_NOTHING):
        return None
    return isinstance(exc, _ANSWERED)


def _unsent(exc: errors.ConnectWiseError, unsent: bool) -> errors.ConnectWiseError:
    """Mark a failure whose request never reached ConnectWise (so even a write is safe to send again)."""
    exc.unsent = unsent  # type: ignore[attr-defined]
    return exc


def _host(url: str) -> str:
    """The host (and port) a request went to, as a person typed the site."""
    return urlsplit(url).netloc or url


def _connect_reason(exc: BaseException) -> str:
    """Why no connection was made, in words: refused, no route, DNS, a refused certificate."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return "its HTTPS certificate was not accepted"
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return "the connection was refused (nothing answers on that port)"
        if isinstance(seen, socket.gaierror):
            return "its name is not in DNS (check the spelling)"
        if getattr(seen, "errno", None) in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "there is no network route to it"
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    if "refused" in text:
        return "the connection was refused (nothing answers on that port)"
    if "name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
        return "its name is not in DNS (check the spelling)"
    return "the connection failed"


def _endpoint(url: str) -> str:
    """The resource path without ids and query, e.g. ``finance/invoices/{id}`` (safe for spans and logs)."""
    path = urlsplit(url).path
    path = path.split("/apis/3.0/", 1)[-1]
    if path.startswith("/login/companyinfo/"):
        return "login/companyinfo"
    return re.sub(r"/\d+", "/{id}", path)


def _module(endpoint: str) -> str:
    for prefix, module in MODULES.items():
        if endpoint.startswith(prefix):
            return module
    return endpoint


def _cw_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        # A validation refusal's reason is in its first ValidationError ("productItem object is invalid" alone
        # tells a person nothing).
        found = body.get("errors")
        detail = found[0].get("message") if isinstance(found, list) and found and isinstance(found[0], dict) else ""
        message = str(body.get("message") or body.get("error") or "")
        return (f"{message}: {detail}" if detail and message else str(detail or message))[:300]
    return ""


def _error_for(response: httpx.Response, endpoint: str) -> errors.ConnectWiseError:
    status, message = response.status_code, _cw_message(response)
    if status == 401:
        return errors.AuthRefused("ConnectWise refused the API keys: check the company id, public key and "
                                  "private key (and that the API member is active)", status)
    if status == 403:
        module = _module(endpoint)
        return errors.PermissionMissing(f"The API member lacks the {module} permission in ConnectWise", module)
    if status == 404:
        return errors.NotFound(f"ConnectWise has no {endpoint}" + (f" ({message})" if message else ""), status)
    if status == 429:
        exc = errors.Throttled("ConnectWise is throttling our requests; try again in a minute", status)
        exc.retry_after = _retry_after(response)  # type: ignore[attr-defined]
        return _unsent(exc, True)  # refused before it was looked at: even a write may be sent again
    if status >= 500:
        return errors.Unavailable(f"ConnectWise answered {status} (server error) for {endpoint}", status)
    return errors.BadRequest(f"ConnectWise refused the request to {endpoint}: {message or status}", status)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None
