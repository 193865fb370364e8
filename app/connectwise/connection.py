"""The tenant's ConnectWise connection: save (keys encrypted, audited without secrets), load, test."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from app.audit.log import Actor, Origin, changes, record
from app.config import Config
from app.connectwise import errors
from app.connectwise.client import Client, Credentials, check_company_id, normalise_site
from app.connectwise.models import Connection
from app.connectwise.onprem import site_policy
from app.connectwise.permissions import checks as permission_checks
from app.connectwise.ratelimit import RequestBudget
from app.connectwise.sites import Resolver
from app.security.crypto import FieldRef, Keyring

TABLE = "connectwise_connections"
# What "Test connection" checks: (label, endpoint whose /count needs the permission), from the one table the
# connection form lists too.
CHECKS = permission_checks()


class FormError(ValueError):
    """Bad input on the connection form; ``field`` names the input to flag."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class CheckResult:
    """One line of "Test connection"; ``status`` is ok, missing (keys or a permission), unreachable or failed."""

    label: str
    ok: bool
    detail: str
    status: str = ""


def failed_check(exc: errors.ConnectWiseError) -> CheckResult:
    """The one line a test gets when ConnectWise could not be asked at all, named for what went wrong."""
    if isinstance(exc, errors.AuthRefused):
        return CheckResult("API keys", False, str(exc), "missing")
    if isinstance(exc, errors.Unreachable | errors.TimedOut | errors.Unavailable):
        return CheckResult("Connection", False, str(exc), "unreachable")
    return CheckResult("Connection", False, str(exc), "failed")


def _ref(conn: Connection, field: str) -> FieldRef:
    return FieldRef(conn.tenant_id, TABLE, conn.id, field)


def get_connection(session: Session) -> Connection | None:
    return session.execute(select(Connection)).scalar_one_or_none()


def credentials(conn: Connection, keyring: Keyring) -> Credentials:
    return Credentials(conn.site, conn.company_id, keyring.decrypt(conn.public_key_enc, _ref(conn, "public_key")),
                       keyring.decrypt(conn.private_key_enc, _ref(conn, "private_key")))


def save_connection(session: Session, keyring: Keyring, tenant_id: uuid.UUID | str, *, site: str, company_id: str,
                    public_key: str, private_key: str | None, allow_loopback_http: bool, actor: Actor,
                    origin: Origin | None = None, resolver: Resolver | None = None) -> Connection:
    """Create or update the connection. An empty ``private_key`` keeps the stored one (it is never shown), unless
    the site or company changes: the stored key is only ever sent where it was entered for. A change of site,
    company or either key drops the last test's report."""
    try:
        site = normalise_site(site, allow_loopback_http)
        site_policy(session, allow_loopback=allow_loopback_http, resolver=resolver).check(site)
    except errors.ConnectWiseError as exc:
        raise FormError("site", str(exc)) from exc
    try:
        company_id = check_company_id(company_id)
    except errors.ConnectWiseError as exc:
        raise FormError("company_id", str(exc)) from exc
    public_key = (public_key or "").strip()
    private_key = (private_key or "").strip() or None
    if not public_key or len(public_key) > 200:
        raise FormError("public_key", "Enter the API member's public key")
    conn = get_connection(session)
    if conn is None and not private_key:
        raise FormError("private_key", "Enter the API member's private key")
    moved = conn is not None and (conn.site, conn.company_id) != (site, company_id)
    if moved and not private_key:
        raise FormError("private_key", "You changed the site or company: enter the private key again (the stored "
                                       "one is only ever sent to the site and company it was entered for)")
    if private_key is not None and len(private_key) > 200:
        raise FormError("private_key", "That private key is too long")

    before = _public_view(conn) if conn else {}
    if conn is None:
        conn = Connection(id=uuid.uuid4(), tenant_id=uuid.UUID(str(tenant_id)), site=site, company_id=company_id)
        session.add(conn)
    old_public = keyring.decrypt(conn.public_key_enc, _ref(conn, "public_key")) if conn.public_key_enc else None
    conn.site, conn.company_id = site, company_id
    conn.public_key_enc = keyring.encrypt(public_key, _ref(conn, "public_key"))
    changed_private = private_key is not None and (
        conn.private_key_enc is None
        or keyring.decrypt(conn.private_key_enc, _ref(conn, "private_key")) != private_key)
    if private_key is not None:
        conn.private_key_enc = keyring.encrypt(private_key, _ref(conn, "private_key"))
        conn.private_key_saved_at = datetime.now(UTC)
    if moved or old_public != public_key or changed_private:
        # The last test spoke of other settings: it must not stand for these (page, dashboard, anywhere).
        conn.codebase, conn.last_test_ok, conn.last_test_at, conn.last_test_report = None, None, None, None
    session.flush()
    after = _public_view(conn)
    # Which keys changed, never their values.
    after["changed_keys"] = ", ".join(name for name, changed in (("public", old_public != public_key),
                                                                   ("private", changed_private)) if changed)
    if moved:
        # Both sides in full: where the keys now go is the point of this row.
        b, a, action = before, after, "connectwise.site_changed"
    elif before:
        b, a = changes({**before, "changed_keys": ""}, after)
        action = "connectwise.connection_saved"
    else:
        b, a, action = None, after, "connectwise.connected"
    record(session, conn.tenant_id, actor, action, target_type="connectwise_connection", target_id=conn.id,
           before=b, after=a, origin=origin)
    return conn


def _public_view(conn: Connection) -> dict[str, Any]:
    return {"site": conn.site, "company_id": conn.company_id}


def make_client(conn: Connection, keyring: Keyring, config: Config, redis: Any = None, *, for_job: bool = False,
                resolver: Resolver | None = None, **kwargs: Any) -> Client:
    """The tenant's client. Pages (the default) wait about a second for a budget slot; jobs pass ``for_job``.

    The default is the page's because a forgotten flag then costs a job a retry, never a web thread.
    """
    return client_for(object_session(conn), credentials(conn, keyring), conn.tenant_id, config, redis,
                      for_job=for_job, resolver=resolver, **kwargs)


def client_for(session: Session | None, creds: Credentials, tenant_id: uuid.UUID | str, config: Config,
               redis: Any = None, *, for_job: bool = False, resolver: Resolver | None = None,
               **kwargs: Any) -> Client:
    """A client for ``creds`` under the tenant's site policy and budget: the connection's keys (``make_client``), or
    keys it had before (review's callbacks are removed from their old site with the keys that registered them)."""
    kind = "JOB" if for_job else "PAGE"
    wait = getattr(config, f"CONNECTWISE_{kind}_WAIT_SECONDS")
    budget = RequestBudget(redis, config.CONNECTWISE_MAX_REQUESTS_PER_MINUTE, max_wait=wait,
                           host_limit=config.CONNECTWISE_HOST_MAX_REQUESTS_PER_MINUTE) if redis is not None else None
    # The tenant's hosts are read again for every client, so removing one stops it at once.
    policy = site_policy(session, allow_loopback=not config.is_production, resolver=resolver)
    options = {"timeout": config.CONNECTWISE_TIMEOUT_SECONDS, "cache_ttl": config.CONNECTWISE_CACHE_TTL_SECONDS,
               "site_policy": policy, "allow_loopback_http": not config.is_production, "rate_limiter": budget, "max_wait": wait,
               "deadline": getattr(config, f"CONNECTWISE_{kind}_DEADLINE_SECONDS"), **kwargs}
    return Client(creds, config.CONNECTWISE_CLIENT_ID, tenant_id=str(tenant_id), redis=redis, **options)


def run_checks(client: Client) -> list[CheckResult]:
    """Keys first (nothing else can work without them), then every permission we need, in parallel."""
    try:
        info = client.get("system/info", cache=False)
        version = info.get("version", "") if isinstance(info, dict) else ""
        results = [CheckResult("API keys", True, f"Accepted{f' (ConnectWise {version})' if version else ''}", "ok")]
    except errors.ConnectWiseError as exc:
        return [failed_check(exc)]

    def check(label: str, path: str) -> CheckResult:
        try:
            n = client.count(path)
            return CheckResult(label, True, f"Readable ({n:,} records)", "ok")
        except errors.PermissionMissing as exc:
            return CheckResult(label, False, str(exc), "missing")
        except errors.ConnectWiseError as exc:
            return CheckResult(label, False, str(exc), failed_check(exc).status)

    results += client.parallel([partial(check, label, path) for label, path in CHECKS])
    return results


def store_test_result(conn: Connection, results: list[CheckResult]) -> None:
    conn.last_test_at = datetime.now(UTC)
    conn.last_test_ok = all(r.ok for r in results)
    conn.last_test_report = {"checks": [asdict(r) for r in results]}
