"""Public invoice links: /i/<token> (the branded page), its PDF, brand stylesheet and logo. No sign-in.

Every render reads the invoice live from ConnectWise (the client's short raw-response cache aside) and writes one
usage row; nothing of the invoice is stored. Unknown, revoked and expired tokens all get the same plain "link not
valid" page (404 for unknown, 410 for revoked/expired), so the page tells a stranger nothing. A ConnectWise
outage answers 503 "temporarily unavailable". Responses are never indexed, cached by proxies or sent on as a
referrer.

The public PDF is made in the request, not in a job: a client clicking "Download PDF" in an email gets the file
from a plain link (no script, no polling page), xhtml2pdf renders a typical invoice in well under two seconds,
and the per-token and per-IP rate limits bound the work one link or one address can ask for. A rendered public
PDF is kept in Redis for the ConnectWise cache's lifetime (tenant- and link-keyed), so repeated clicks on one link
do not render again (a 500-line invoice takes ~5 s).
"""

from __future__ import annotations

import io
import logging
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, render_template, send_file, url_for
from flask_login import current_user

from app.branding import store as branding_store
from app.branding.store import StoredBranding
from app.invoices import service
from app.invoices.document import InvoiceDocument
from app.invoices.errors import UNREADABLE_RETRY_AFTER, InvoiceUnavailable
from app.invoices.hints import ReferenceHints
from app.invoices.html import branding_css, render_document_html
from app.invoices.links import ResolvedLink, record_view, resolve
from app.invoices.pdf import render_pdf
from app.invoices.pdf_jobs import pdf_filename
from app.invoices.templating import page_size_for
from app.invoices.view_model import summary
from app.security.limits import PUBLIC_LINK_PER_IP, PUBLIC_LINK_PER_TOKEN, client_ip, limiter, view_arg_key
from app.services import current_services
from app.tenancy import db_session, set_tenant

log = logging.getLogger(__name__)
bp = Blueprint("public_invoices", __name__, url_prefix="/i")
PUBLIC_HEADERS = {"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer",
                  "Cache-Control": "private, no-store"}
ASSET_HEADERS = {"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer",
                 "Cache-Control": "private, max-age=300"}
# The IP limit is shared by every public endpoint; the token limit counts pages and PDFs of one link.
per_ip = limiter.shared_limit(PUBLIC_LINK_PER_IP, scope="public-link-ip", key_func=client_ip)
per_token = limiter.shared_limit(PUBLIC_LINK_PER_TOKEN, scope="public-link-token", key_func=view_arg_key("token"))


@bp.after_request
def _never_indexed(response: Response) -> Response:
    """Every answer under /i/, errors and 429s included, stays out of search engines and referrers."""
    response.headers.setdefault("X-Robots-Tag", "noindex, nofollow")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


class _Stop(Exception):
    """A finished response to send instead of the invoice."""

    def __init__(self, response: Response):
        self.response = response


@bp.errorhandler(_Stop)
def _stopped(stop: _Stop) -> Response:
    return stop.response


def _page(template: str, status: int, **context: Any) -> Response:
    response = current_app.make_response((render_template(template, **context), status))
    response.headers.update(PUBLIC_HEADERS)
    return response


def not_valid(status: int) -> Response:
    """The one page for unknown (404), revoked and expired (410) links: same words, no hint which."""
    return _page("invoices/public_not_valid.html", status)


def unavailable(retry_after: int = 30) -> Response:
    response = _page("invoices/public_unavailable.html", 503)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _link(token: str) -> tuple[ResolvedLink, str]:
    """The live link of ``token`` and who is looking; the request's tenant becomes the link's."""
    link = resolve(db_session(), token)
    if link is None:
        raise _Stop(not_valid(404))
    if link.status != "active":
        raise _Stop(not_valid(410))
    viewer = _viewer(link)
    set_tenant(link.tenant_id)
    return link, viewer


def _viewer(link: ResolvedLink) -> str:
    """'staff' when someone signed in to this link's tenant opens it (a preview), else 'client'."""
    if current_user.is_authenticated and str(getattr(current_user, "tenant_id", "")) == str(link.tenant_id):
        return "staff"
    return "client"


def _document(link: ResolvedLink) -> InvoiceDocument:
    services = current_services()
    redis = services.redis
    try:
        with service.open_client(db_session(), services.keyring, services.config, redis) as client:
            return service.load_document(client, link.invoice_id, hints=ReferenceHints(redis))
    except InvoiceUnavailable as exc:
        if exc.reason == "not_found":
            raise _Stop(not_valid(410)) from exc  # the invoice is gone from ConnectWise: the link no longer works
        # A client is told only "temporarily unavailable": what is wrong on the MSP's side is not theirs to read.
        log.warning("public link render failed: %s", exc.reason,
                    extra={"event": "invoices.public_unavailable", "invoice_id": link.invoice_id})
        raise _Stop(unavailable(exc.retry_after or UNREADABLE_RETRY_AFTER)) from exc


def _branding(link: ResolvedLink) -> StoredBranding:
    return branding_store.load(db_session(), link.tenant_id)


@bp.get("/<token>")
@per_ip
@per_token
def page(token: str) -> Response:
    link, viewer = _link(token)
    doc = _document(link)
    stored = _branding(link)
    logo_url = url_for(".logo", token=token, v=stored.version) if stored.has_logo else None
    # The PDF button lives in the summary above the document, with the amount due and the Pay button.
    html = render_document_html(doc, stored.branding, logo_url=logo_url, pdf_url=None)
    record_view(db_session(), link.tenant_id, link.invoice_id, doc.totals.total, kind="page", viewer=viewer,
                link_id=link.link_id)
    head = summary(doc, stored.branding)
    return _page("invoices/public.html", 200, document=html, summary=head,
                 title=f"{head['title']} {doc.number}",
                 brand_css_url=url_for(".brand_css", token=token, v=stored.version),
                 pdf_url=url_for(".pdf", token=token))


@bp.get("/<token>/pdf")
@per_ip
@per_token
def pdf(token: str) -> Response:
    link, viewer = _link(token)
    stored = _branding(link)
    made = _recent_pdf(link, stored)
    if made is None:
        doc = _document(link)
        data = render_pdf(doc, stored.branding, logo=stored.logo, page_size=page_size_for(doc, stored.page_size_choice))
        made = (data, doc.totals.total, pdf_filename(doc.number, link.invoice_id))
        _keep_pdf(link, stored, made)
    data, total, filename = made
    record_view(db_session(), link.tenant_id, link.invoice_id, total, kind="pdf", viewer=viewer,
                link_id=link.link_id)
    response = send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                         download_name=filename, max_age=0)
    response.headers.update(PUBLIC_HEADERS)
    return response


# A public PDF is rendered in the request (see the module docstring). So that one link clicked again and again
# cannot keep a worker busy, the file is kept in Redis, per tenant and link, for as long as the ConnectWise client
# would serve the same data from its own cache anyway (CONNECTWISE_CACHE_TTL_SECONDS; 0 turns this off).


def _pdf_key(link: ResolvedLink, stored: StoredBranding) -> str:
    return f"bi:pubpdf:{link.tenant_id}:{link.link_id}:{stored.version}:{stored.page_size_choice}"


def _recent_pdf(link: ResolvedLink, stored: StoredBranding) -> tuple[bytes, Decimal, str] | None:
    if current_services().config.CONNECTWISE_CACHE_TTL_SECONDS <= 0:
        return None
    try:
        raw = current_services().redis.hgetall(_pdf_key(link, stored))
    except Exception:  # a cache outage only costs a render
        return None
    pdf, total, filename = raw.get(b"pdf"), raw.get(b"total"), raw.get(b"filename")
    # The connection answers bytes (no decode_responses); an entry missing a part is a miss, not a failure.
    if not (isinstance(pdf, bytes) and isinstance(total, bytes) and isinstance(filename, bytes)):
        return None
    return pdf, Decimal(total.decode()), filename.decode()


def _keep_pdf(link: ResolvedLink, stored: StoredBranding, made: tuple[bytes, Decimal, str]) -> None:
    ttl = current_services().config.CONNECTWISE_CACHE_TTL_SECONDS
    if ttl <= 0:
        return
    key = _pdf_key(link, stored)
    try:
        redis = current_services().redis
        redis.hset(key, mapping={"pdf": made[0], "total": str(made[1]), "filename": made[2]})
        redis.expire(key, ttl)
    except Exception:
        log.warning("could not keep a public PDF briefly")


@bp.get("/<token>/brand.css")
@per_ip
def brand_css(token: str) -> Response:
    link, _viewer_kind = _link(token)
    response = Response(branding_css(_branding(link).branding), mimetype="text/css")
    response.headers.update(ASSET_HEADERS)
    return response


@bp.get("/<token>/logo")
@per_ip
def logo(token: str) -> Response:
    link, _viewer_kind = _link(token)
    stored = _branding(link)
    if not stored.has_logo:
        return not_valid(404)
    response = Response(stored.logo, mimetype=stored.logo_mime or "application/octet-stream")
    response.headers.update(ASSET_HEADERS)
    return response
