"""Alembic environment: migrations always run as the owner role from DATABASE_OWNER_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

from app.db import Base, normalise_url


def _owner_url() -> str:
    url = context.config.attributes.get("owner_url") or os.environ.get("DATABASE_OWNER_URL", "")
    if not url:
        raise SystemExit("DATABASE_OWNER_URL: required to run migrations (the owner role, not the app role)")
    return normalise_url(url)


def run_migrations_online() -> None:
    import app.models  # noqa: F401  (fills Base.metadata)

    engine = create_engine(_owner_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
