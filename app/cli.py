"""Ops commands: `flask --app wsgi tenants|keys|audit|db|dev ...`."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.services import Services, services_of

tenants_cli = AppGroup("tenants", help="Tenants.")
keys_cli = AppGroup("keys", help="Encryption keys.")
audit_cli = AppGroup("audit", help="The audit log.")
db_cli = AppGroup("db", help="Schema migrations (as the owner role).")
dev_cli = AppGroup("dev", help="Development helpers.")


def _services() -> Services:
    return services_of(current_app)


def _factory():
    return _services().session_factory


def _session_for(tenant_id: str):
    from app.tenancy import tenant_session

    return tenant_session(tenant_id, _factory())


@tenants_cli.command("create")
@click.argument("name")
@click.option("--owner-email", required=True, help="The first user, who becomes the tenant's owner.")
@click.option("--owner-name", default="", help="The owner's display name.")
def tenants_create(name: str, owner_email: str, owner_name: str) -> None:
    """Create a tenant and its owner; prints the tenant id."""
    from app.tenancy import no_tenant_session
    from app.tenants.service import create_tenant

    try:
        with no_tenant_session(_factory()) as session:
            tenant = create_tenant(session, name, owner_email, owner_name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(tenant.id))


@keys_cli.command("rotate")
@click.option("--batch-size", default=500, show_default=True)
def keys_rotate(batch_size: int) -> None:
    """Re-encrypt every stored secret under the first key of ENCRYPTION_KEYS (resumable)."""
    import app.models  # noqa: F401  (every model mapped, so rotation sees every encrypted column)
    from app.security.rotation import rotate_all
    from app.tenancy import all_tenant_ids

    keyring = _services().keyring
    total = rotate_all(keyring, all_tenant_ids(_factory()), _session_for, batch_size)
    click.echo(f"re-encrypted {total} values under key {keyring.current_id}")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Check every tenant's hash chain; report the first broken link."""
    from app.audit.verify import verify_all
    from app.tenancy import all_tenant_ids

    ids = all_tenant_ids(_factory())
    checked, breaks = verify_all(ids, _session_for)
    for brk in breaks:
        click.echo(f"BROKEN: tenant {brk.tenant_id}, audit row {brk.entry_id}: {brk.reason}")
    if breaks:
        click.echo(f"{len(breaks)} of {len(ids)} tenants have a broken chain ({checked} rows intact)")
        sys.exit(1)
    click.echo(f"ok: {checked} rows across {len(ids)} tenants, every link intact")


@audit_cli.command("purge")
def audit_purge() -> None:
    """Remove audit rows older than 90 days now (the worker also does this daily)."""
    from app.audit.retention import purge_expired_rows
    from app.tenancy import no_tenant_session

    with no_tenant_session(_factory()) as session:
        removed = purge_expired_rows(session)
    click.echo(f"removed {removed} rows older than 90 days")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate as DATABASE_OWNER_URL and make sure the app role of DATABASE_URL exists with its grants."""
    from app import dbadmin

    owner_url = os.environ.get("DATABASE_OWNER_URL", "")
    if not owner_url:
        raise click.ClickException("DATABASE_OWNER_URL: required to migrate")
    dbadmin.upgrade(owner_url, _services().config.DATABASE_URL, revision)
    click.echo(f"schema at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    from app import dbadmin

    dbadmin.downgrade(os.environ["DATABASE_OWNER_URL"], revision)
    click.echo(f"schema at {revision}")


@dev_cli.command("sign-in-link")
@click.argument("tenant_id")
@click.argument("email")
def dev_sign_in_link(tenant_id: str, email: str) -> None:
    """Print a development sign-in link for EMAIL in TENANT_ID."""
    from sqlalchemy import func, select

    from app.auth.dev import sign_in_token
    from app.users.models import User

    cfg = _services().config
    if not cfg.is_development:
        raise click.ClickException("sign-in links exist only with APP_ENV=development")
    with _session_for(tenant_id) as session:
        user = session.execute(select(User).where(func.lower(User.email) == email.lower())).scalar_one_or_none()
        if user is None:
            raise click.ClickException(f"no user {email} in tenant {tenant_id}")
        token = sign_in_token(cfg.SECRET_KEY, tenant_id, user.id)
    click.echo(f"{cfg.BASE_URL.rstrip('/')}/dev/sign-in?token={token}")


def register(app: Flask) -> None:
    from app.connectwise.cli import connectwise_cli
    from app.invoices.cli import invoices_cli
    from app.review.cli import review_cli

    for group in (tenants_cli, keys_cli, audit_cli, db_cli, dev_cli, connectwise_cli, invoices_cli, review_cli):
        app.cli.add_command(group)
