"""PDF downloads for signed-in people: an RQ job reconstructs and renders, the bytes wait briefly in Redis.

The job takes ids only (tenant, invoice, paper size, a random job key). Its state and the finished file live
under tenant-keyed Redis keys for ``PDF_TTL_SECONDS``; the page polls the state and then fetches the file. A
job key from another tenant finds nothing. The file is never written to the database.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from app.branding import store as branding_store
from app.invoices import service
from app.invoices.errors import InvoiceUnavailable
from app.invoices.hints import ReferenceHints
from app.invoices.links import record_view
from app.invoices.pdf import render_pdf
from app.invoices.templating import page_size_for
from app.jobs.queue import enqueue
from app.jobs.runtime import job
from app.services import Services
from app.tenancy import tenant_session

log = logging.getLogger(__name__)
PDF_TTL_SECONDS = 600
JOB_TIMEOUT_SECONDS = 180
QUEUE = "pdf"  # its own queue: a burst of PDFs never delays a sign-in code
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class PdfState:
    key: str
    invoice_id: int
    status: str  # queued | fetching | rendering | done | failed
    filename: str
    error: str

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


def _state_key(tenant_id: str, key: str) -> str:
    return f"bi:pdf:{tenant_id}:{key}"


def _file_key(tenant_id: str, key: str) -> str:
    return f"bi:pdf:{tenant_id}:{key}:file"


def pdf_filename(number: str, invoice_id: int) -> str:
    """A safe download name from the invoice number: ASCII letters, digits, '.', '_' and '-' only."""
    ascii_only = unicodedata.normalize("NFKD", number or "").encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_only).strip(".-_")[:80]
    return f"Invoice-{cleaned or int(invoice_id)}.pdf"


def request_pdf(redis: Any, tenant_id: uuid.UUID | str, invoice_id: int, page_size: str) -> PdfState:
    """Queue a PDF; the returned state's key is what the page polls."""
    key = secrets.token_urlsafe(18)
    tid = str(tenant_id)
    redis.hset(_state_key(tid, key), mapping={"status": "queued", "invoice_id": int(invoice_id),
                                               "filename": pdf_filename("", invoice_id), "error": ""})
    redis.expire(_state_key(tid, key), PDF_TTL_SECONDS)
    enqueue(redis, pdf_job, tid, int(invoice_id), page_size, key, queue=QUEUE, job_timeout=JOB_TIMEOUT_SECONDS,
            result_ttl=0, failure_ttl=86400)
    return PdfState(key, int(invoice_id), "queued", pdf_filename("", invoice_id), "")


def pdf_state(redis: Any, tenant_id: uuid.UUID | str, key: str) -> PdfState | None:
    if not _KEY.match(key or ""):
        return None
    raw = redis.hgetall(_state_key(str(tenant_id), key))
    if not raw:
        return None
    values = {k.decode(): v.decode() for k, v in raw.items()}
    return PdfState(key, int(values.get("invoice_id", "0")), values.get("status", "failed"),
                    values.get("filename", "invoice.pdf"), values.get("error", ""))


def pdf_file(redis: Any, tenant_id: uuid.UUID | str, key: str) -> bytes | None:
    if not _KEY.match(key or ""):
        return None
    return redis.get(_file_key(str(tenant_id), key))


def _set(redis: Any, tenant_id: str, key: str, **values: Any) -> None:
    redis.hset(_state_key(tenant_id, key), mapping={k: str(v) for k, v in values.items()})
    redis.expire(_state_key(tenant_id, key), PDF_TTL_SECONDS)


@job
def pdf_job(services: Services, tenant_id: str, invoice_id: int, page_size: str, key: str) -> str:
    """Reconstruct from ConnectWise, render, keep the bytes in Redis; record a staff PDF view."""
    redis, factory = services.redis, services.session_factory
    # "auto" (the branding's "by the remit-to country") is settled once the invoice is read.
    choice = page_size if page_size in branding_store.PAGE_SIZE_CHOICES else branding_store.AUTO_PAGE_SIZE
    _set(redis, tenant_id, key, status="fetching")
    try:
        with tenant_session(tenant_id, factory) as session:
            stored = branding_store.load(session, tenant_id)
            client = service.open_client(session, services.keyring, services.config, redis, for_page=False)
        # The session is closed before ConnectWise is asked: a slow answer must not hold a database connection.
        with client:
            doc = service.load_document(client, int(invoice_id), hints=ReferenceHints(redis))
        filename = pdf_filename(doc.number, invoice_id)
        _set(redis, tenant_id, key, status="rendering", filename=filename)
        data = render_pdf(doc, stored.branding, logo=stored.logo, page_size=page_size_for(doc, choice))
        redis.set(_file_key(tenant_id, key), data, ex=PDF_TTL_SECONDS)
        with tenant_session(tenant_id, factory) as session:
            record_view(session, tenant_id, int(invoice_id), doc.totals.total, kind="pdf", viewer="staff")
        _set(redis, tenant_id, key, status="done")
        return "done"
    except InvoiceUnavailable as exc:
        _set(redis, tenant_id, key, status="failed", error=str(exc))
    except Exception:
        _set(redis, tenant_id, key, status="failed",
             error="The PDF could not be made; we have been told. Try again in a few minutes.")
        raise
    log.info("pdf job failed", extra={"event": "invoices.pdf_failed", "invoice_id": int(invoice_id)})
    return "failed"
