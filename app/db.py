"""Engine, sessions, the declarative Base, and the tenant hook that sets RLS per transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

TENANT_KEY = "tenant_id"
_SET_TENANT = text("select set_config('app.tenant_id', :tenant_id, true)")


class Base(DeclarativeBase):
    """Base of every model; a model with a ``tenant_id`` column is a tenant table."""


def normalise_url(url: str) -> str:
    """Make a postgresql:// URL use the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the app role; connections start with no tenant."""
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(normalise_url(url), **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def _apply_tenant(connection: Any, tenant_id: str | None) -> None:
    # set_config(..., true) is transaction-local, so a pooled connection never carries a tenant onward.
    connection.execute(_SET_TENANT, {"tenant_id": tenant_id or ""})


@event.listens_for(Session, "after_begin")
def _set_tenant_after_begin(session: Session, transaction: Any, connection: Any) -> None:
    _apply_tenant(connection, session.info.get(TENANT_KEY))


def set_session_tenant(session: Session, tenant_id: uuid.UUID | str | None) -> None:
    """Bind ``session`` to a tenant; applies at once if a transaction is already open."""
    value = str(uuid.UUID(str(tenant_id))) if tenant_id else None
    session.info[TENANT_KEY] = value
    if session.in_transaction():
        # One bind per session, so this is the connection the open transaction runs on.
        _apply_tenant(session.connection(), value)


def session_tenant(session: Session) -> str | None:
    return session.info.get(TENANT_KEY)
