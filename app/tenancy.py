"""Which tenant a unit of work runs for: per request, per job, per CLI command."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import abort, g, has_app_context
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db import session_tenant, set_session_tenant
from app.services import current_services

F = TypeVar("F", bound=Callable[..., Any])
_TENANT_IDS = text("select * from bi_tenant_ids()")


def db_session() -> Session:
    """The request's (or app context's) session, created on first use."""
    if "db_session" not in g:
        g.db_session = current_services().session_factory()
    return g.db_session


def close_db_session(exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is None:
        return
    try:
        if exc is None and g.get("response_ok", True) and session.in_transaction():
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


def set_tenant(tenant_id: uuid.UUID | str | None) -> None:
    """Set the tenant of the current request, at once on its open transaction too."""
    set_session_tenant(db_session(), tenant_id)
    g.tenant_id = str(tenant_id) if tenant_id else None


def current_tenant_id() -> str | None:
    if not has_app_context():
        return None
    return g.get("tenant_id")


def required_tenant_id() -> str:
    """The request's tenant for a page that needs one; 404 (as ``tenant_required`` answers) when none is set."""
    tenant_id = current_tenant_id()
    if not tenant_id:
        abort(404)
    return tenant_id


@contextmanager
def _unit_of_work(session: Session) -> Iterator[Session]:
    """Commit on success, roll back on error, always close: the one transaction shape of jobs and CLI sessions."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def tenant_session(tenant_id: uuid.UUID | str, factory: Callable[[], Session]) -> Iterator[Session]:
    """A session bound to one tenant for jobs and CLI; commits on success, rolls back on error."""
    session = factory()
    set_session_tenant(session, tenant_id)
    with _unit_of_work(session):
        yield session


@contextmanager
def no_tenant_session(factory: Callable[[], Session]) -> Iterator[Session]:
    """The one way to open a session bound to no tenant: for the listed pre-tenant database functions (and for
    creating a tenant, which binds itself). RLS shows it no rows; commits on success, rolls back on error."""
    with _unit_of_work(factory()) as session:
        if session_tenant(session) is not None:
            raise RuntimeError("a session meant to have no tenant is bound to one")
        yield session


def all_tenant_ids(factory: Callable[[], Session]) -> list[str]:
    """Every tenant's id (ids only, through ``bi_tenant_ids()``): what fan-outs and key rotation walk."""
    with no_tenant_session(factory) as session:
        return [str(t) for t in session.execute(_TENANT_IDS).scalars()]


def tenant_required(view: F) -> F:
    """Refuse a view (404, not 403: nothing to reveal) when no tenant is set."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_tenant_id() or not session_tenant(db_session()):
            abort(404)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
