"""`flask --app wsgi connectwise connect|allow-host|sync-members`: the same rules as the settings page."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.audit.log import Actor
from app.connectwise import errors
from app.services import Services, services_of
from app.tenancy import tenant_session

connectwise_cli = AppGroup("connectwise", help="ConnectWise connection and sync.")


def _services() -> Services:
    return services_of(current_app)


@connectwise_cli.command("connect")
@click.argument("tenant_id")
@click.option("--site", required=True)
@click.option("--company", "company_id", required=True)
@click.option("--public-key", required=True)
@click.option("--private-key", required=True)
def connect(tenant_id: str, site: str, company_id: str, public_key: str, private_key: str) -> None:
    """Store a tenant's ConnectWise connection (encrypted) and test it."""
    from app.connectwise.connection import CheckResult, FormError, run_checks, save_connection, store_test_result
    from app.connectwise.tenant_client import tenant_client

    services = _services()
    cfg, factory = services.config, services.session_factory
    try:
        with tenant_session(tenant_id, factory) as session:
            save_connection(session, services.keyring, tenant_id, site=site, company_id=company_id,
                            public_key=public_key, private_key=private_key,
                            allow_loopback_http=not cfg.is_production, actor=Actor.system("cli"))
    except FormError as exc:
        raise click.ClickException(str(exc)) from exc
    from app.review.callback_jobs import request_sync_if_needed

    with tenant_session(tenant_id, factory) as session:
        request_sync_if_needed(services, session, tenant_id)  # review's callbacks follow the connection (a job)
    with tenant_session(tenant_id, factory) as session:
        from app.connectwise.connection import get_connection

        conn = get_connection(session)
        if conn is None:  # saved a moment ago, so only removed since by someone else
            raise click.ClickException("the connection was removed before it could be tested")
        try:
            with tenant_client(session, services.keyring, cfg, services.redis, for_page=False, max_retries=1) as client:
                results = run_checks(client)
        except errors.ConnectWiseError as exc:  # the site did not answer discovery: the test's first finding
            results = [CheckResult("Connection", False, str(exc))]
        store_test_result(conn, results)
    for r in results:
        click.echo(f"{'ok  ' if r.ok else 'FAIL'} {r.label}: {r.detail}")
    if not all(r.ok for r in results):
        raise click.ClickException("saved, but the connection test found problems (above)")


@connectwise_cli.command("allow-host")
@click.argument("tenant_id")
@click.argument("host")
def allow_host(tenant_id: str, host: str) -> None:
    """Allow an on-premises ConnectWise host for a tenant (every address it resolves to must be public; audited)."""
    from app.connectwise.onprem import add_host

    services = _services()
    try:
        with tenant_session(tenant_id, services.session_factory) as session:
            allowed = add_host(session, tenant_id, host, actor=Actor.system("cli"),
                               resolver=services.connectwise_resolver).host
    except errors.ConnectWiseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"allowed {allowed}; save it as the site with `connectwise connect`")


@connectwise_cli.command("sync-members")
@click.argument("tenant_id")
def sync_members(tenant_id: str) -> None:
    """Pull ConnectWise members into the tenant's users now."""
    from app.connectwise.members import sync_members as run_sync

    try:
        outcome = run_sync(_services(), tenant_id)
    except errors.ConnectWiseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"members synced: {outcome.created} created, {outcome.updated} updated, "
               f"{outcome.deactivated} deactivated")
