"""`flask --app wsgi review sweep|flags|storage|callbacks`: sweep a tenant now, print its open flags, switch review
storage, register or remove the ConnectWise callbacks."""

from __future__ import annotations

import json
import uuid

import click
from flask import current_app
from flask.cli import AppGroup

from app.audit.log import Actor
from app.services import Services, services_of
from app.tenancy import tenant_session

review_cli = AppGroup("review", help="Invoice review: sweeps, flags, storage.")


def _services() -> Services:
    return services_of(current_app)


def _tenant(raw: str) -> str:
    """The tenant id, checked to name a workspace (a clear error instead of a foreign-key failure)."""
    from app.tenants.models import Tenant

    try:
        tenant_id = str(uuid.UUID(raw))
    except ValueError as exc:
        raise click.BadParameter("not a tenant id (a UUID)", param_hint="TENANT_ID") from exc
    with tenant_session(tenant_id, _services().session_factory) as session:
        if session.get(Tenant, uuid.UUID(tenant_id)) is None:
            raise click.ClickException(f"no workspace has the id {tenant_id}")
    return tenant_id


@review_cli.command("sweep")
@click.argument("tenant_id")
@click.option("--full", is_flag=True, help="Read every open invoice (default: only what changed since the last "
                                           "successful sweep, full when there is none or none full for a day).")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep's record as JSON.")
def sweep(tenant_id: str, full: bool, as_json: bool) -> None:
    """Sweep a tenant's open invoices now, in the foreground, and print the sweep's record."""
    from app.billing.limits import review_limit_now
    from app.review.details import fill_details
    from app.review.sweep import run_sweep
    from app.tenancy import tenant_session

    services, tid = _services(), _tenant(tenant_id)
    with tenant_session(tid, services.session_factory) as session:
        limit = review_limit_now(session)  # the plan's limit holds here as in the job
    result = run_sweep(services, tid, kind="full" if full else "incremental", review_limit=limit)
    # As the sweep job does: what ConnectWise serves only per parent is read once the flags are written.
    details = fill_details(services, tid) if result.kind == "full" and result.outcome == "ok" else None
    if as_json:
        click.echo(json.dumps(result.as_json()))
    else:
        click.echo(f"sweep {result.kind}: {result.outcome}" + (f" ({result.reason})" if result.reason else ""))
        click.echo(f"  invoices: {result.invoices_seen} seen, {result.invoices_changed} changed, "
                   f"{result.invoices_failed} failed, {result.snapshots_dropped} no longer open")
        click.echo(f"  flags: {result.flags_raised} raised, {result.flags_cleared} cleared")
        click.echo(f"  ConnectWise requests: {result.cw_requests}; {result.seconds:.1f} s")
        if details is not None and details.invoices_pending:
            click.echo(f"  then agreement additions and payments: {details.invoices_filled} invoices filled, "
                       f"{details.cw_requests} requests ({details.outcome})")
        for failure in result.failures:
            click.echo(f"  failed: invoice {failure['invoice_number'] or failure['invoice_id']}: {failure['reason']}")
    if result.outcome == "failed":
        raise click.exceptions.Exit(1)


@review_cli.command("flags")
@click.argument("tenant_id")
@click.option("--invoice", "invoice_number", default=None, help="Only this invoice number's flags.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per flag, one per line.")
def flags(tenant_id: str, invoice_number: str | None, as_json: bool) -> None:
    """Print the open flags (rule, severity, target, sentence)."""
    from app.review.flags import open_flags

    services = _services()
    with tenant_session(_tenant(tenant_id), services.session_factory) as session:
        found = open_flags(session, services.keyring, invoice_number)
    for flag in found:
        if as_json:
            click.echo(json.dumps(flag.as_json()))
        else:
            ok = " [OK]" if flag.marked_ok else ""
            click.echo(f"{flag.invoice_number}  {flag.severity:<7}  {flag.rule}  "
                       f"{flag.target_type} {flag.target_id}{ok}: {flag.message}")
    if not found and not as_json:
        click.echo("no open flags")


@review_cli.command("storage")
@click.argument("tenant_id")
@click.argument("state", type=click.Choice(["on", "off"]))
def storage(tenant_id: str, state: str) -> None:
    """Turn review storage on or off; off purges every snapshot, flag and sweep of the tenant (audited)."""
    from app.review.settings import set_storage

    tenant_id = _tenant(tenant_id)
    with tenant_session(tenant_id, _services().session_factory) as session:
        purged = set_storage(session, tenant_id, state == "on", Actor.system("cli"))
    if state == "on":
        from app.review.callback_jobs import request_sync

        request_sync(_services(), tenant_id)
        click.echo("review storage on; the ConnectWise callbacks are queued to be registered")
    else:
        click.echo(f"review storage off; purged {purged['snapshots']} snapshots, {purged['flags']} flags, "
                   f"{purged['sweeps']} sweeps")
        _echo_removal(_services(), tenant_id)


def _echo_removal(services: Services, tenant_id: str) -> None:
    from app.review.callbacks import disable_callbacks

    done = disable_callbacks(services, tenant_id, Actor.system("cli"))
    if done.removed or done.left:
        click.echo(f"callbacks removed: {len(done.removed)}"
                   + (f"; not removed in ConnectWise (their deliveries are refused): {done.left}" if done.left else ""))


@review_cli.command("callbacks")
@click.argument("tenant_id")
@click.argument("state", type=click.Choice(["on", "off"]))
def callbacks(tenant_id: str, state: str) -> None:
    """Register the ConnectWise callbacks (invoices, time, products) that trigger rescans, or remove them."""
    from app.review.callbacks import CallbackError, enable_callbacks

    services, tenant_id = _services(), _tenant(tenant_id)
    if state == "off":
        _echo_removal(services, tenant_id)
        click.echo("callbacks off")
        return
    try:
        ids = enable_callbacks(services, tenant_id, services.config.BASE_URL, Actor.system("cli"))
    except CallbackError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"callbacks on: {', '.join(str(i) for i in ids)}")
