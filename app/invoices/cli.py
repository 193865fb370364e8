"""`flask --app wsgi invoices link TENANT_ID INVOICE_ID [--expires DAYS]`: print an invoice's public link.

Without ``--expires`` it is the invoice's one stable link (``links.current_link``), the same URL "Copy public link"
and sent emails give; with it, an extra link that stops working after DAYS, as the links card's "another link" form
makes. Either is kept encrypted with the keyring, so the app can copy it again.
"""

from __future__ import annotations

import uuid

import click
from flask import current_app
from flask.cli import AppGroup

from app.audit.log import Actor
from app.invoices import links as public_links
from app.invoices import service
from app.invoices.errors import InvoiceUnavailable
from app.services import services_of
from app.tenancy import tenant_session

invoices_cli = AppGroup("invoices", help="Invoices and their public links.")


@invoices_cli.command("link")
@click.argument("tenant_id")
@click.argument("invoice_id", type=click.IntRange(min=1))
@click.option("--expires", "expires_days", type=click.IntRange(1, public_links.MAX_EXPIRY_DAYS), default=None,
              help="An extra link that stops working after this many days (default: the stable link).")
def link(tenant_id: str, invoice_id: int, expires_days: int | None) -> None:
    """Print the public link of INVOICE_ID of TENANT_ID (checked in ConnectWise first): its stable one, or a new one
    that expires after --expires days."""
    try:
        uuid.UUID(tenant_id)
    except ValueError as exc:
        raise click.ClickException("TENANT_ID must be a tenant's id (a UUID)") from exc
    services = services_of(current_app)
    with tenant_session(tenant_id, services.session_factory) as session:
        try:
            with service.open_client(session, services.keyring, services.config, services.redis,
                                     for_page=False) as client:
                service.require_invoice(client, invoice_id)
        except InvoiceUnavailable as exc:
            if exc.reason == "not_connected":  # the page's "Settings › ConnectWise" means nothing here
                raise click.ClickException(f"tenant {tenant_id} has no ConnectWise connection") from exc
            raise click.ClickException(str(exc)) from exc
        actor = Actor.system("cli")
        if expires_days is None:
            _, url = public_links.current_link(services, session, tenant_id, invoice_id, actor=actor)
        else:
            new = public_links.create_link(session, tenant_id, invoice_id, actor=actor, keyring=services.keyring,
                                           expires_at=public_links.expiry_from_days(expires_days))
            url = services.config.BASE_URL.rstrip("/") + public_links.public_path(new.token)
    click.echo(url)
