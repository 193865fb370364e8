"""Engine, sessions, the declarative Base with its table markers (TenantScoped, Global, encrypted columns), and the
tenant hook that sets RLS per transaction."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from sqlalchemy import Engine, ForeignKey, create_engine, event, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, declared_attr, mapped_column, sessionmaker

TENANT_KEY = "tenant_id"
_SET_TENANT = text("select set_config('app.tenant_id', :tenant_id, true)")


class Base(DeclarativeBase):
    """Base of every model; each model is also TenantScoped or Global (the catalog test holds this)."""


class TenantScoped:
    """A tenant table: ``tenant_id`` (uuid, not null, FK to tenants, deleted with its tenant), declared here once.

    The database must force RLS on the table with the tenant policy (the catalog test checks it).
    ``__tenant_key__`` says what else the column is: "primary_key" for one row per tenant, "unique" for at most one.
    """

    __tenant_key__: ClassVar[Literal["primary_key", "unique"] | None] = None

    @declared_attr
    def tenant_id(cls: type[TenantScoped]) -> Mapped[uuid.UUID]:  # noqa: N805 (declared_attr passes the class)
        key = cls.__tenant_key__
        if key not in (None, "primary_key", "unique"):
            raise TypeError(f"{cls.__name__}.__tenant_key__ must be None, 'primary_key' or 'unique'")
        # None rather than False keeps the column exactly as the models declared it by hand before.
        return mapped_column(UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False,
                             primary_key=key == "primary_key", unique=True if key == "unique" else None)


class Global:
    """A table that is not a tenant's: no ``tenant_id`` (the tenants table itself, RLS on its id). Each says why in
    ``__global_reason__``."""

    __global_reason__: ClassVar[str] = ""


ENCRYPTED = "encrypted"


def encrypted(field: str) -> dict[str, str]:
    """Column ``info`` marking a ciphertext column; ``field`` is the name bound into its associated data. Key
    rotation collects every column so marked."""
    return {ENCRYPTED: field}


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
    """Our sessions: each transaction starts with the session's tenant set (the hook is this factory's only, so
    another library's ``Session`` in the process never runs it)."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    event.listen(factory, "after_begin", _set_tenant_after_begin)
    return factory


def _apply_tenant(connection: Any, tenant_id: str | None) -> None:
    # set_config(..., true) is transaction-local, so a pooled connection never carries a tenant onward.
    connection.execute(_SET_TENANT, {"tenant_id": tenant_id or ""})


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
