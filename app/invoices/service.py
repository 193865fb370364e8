"""The one invoice pipeline: an invoice's ConnectWise payloads, the document built from them, or both.

``fetch_payloads`` reads what an invoice is made of (its header and the raw collections reconstruction uses) into
an ``InvoicePayloads``: a frozen, JSON-serialisable value, exactly what a review snapshot stores.
``build_document`` turns payloads into an ``InvoiceDocument`` without any I/O (the sections are built in
``app.invoices.reconstruct``). ``reconstruct`` is the two together and raises the typed failures
(``InvoiceNotFound``, ``InvalidInvoiceData``, ``ConnectWiseError``). What the media call is ``open_client`` and
``load_document``: they raise only ``InvoiceUnavailable``, which the staff pages, the public page, the PDF job, the
branding preview and the CLI each map once, and they keep the reference hints.

Rounds of requests. Line items (products, time, expenses) are asked for by invoice id, so they never wait for
the header. The reference records (billing setup, bill-to company, tax code, agreement additions, payments,
project or ticket) are named by ids in the header. Without hints the header is read alone (an unknown invoice
then costs one request), then lines and references go in one parallel round: two rounds. With hints (the ids
the last fetch of this invoice used, ``app.invoices.hints``) the header, the lines and the hinted references go
in one round; a reference the header names that the hints did not (or named with another id) is read in a
second round, and hinted records the header does not name are dropped: a wrong hint costs time, never
correctness. Everything goes through the client's per-tenant cache.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy.orm import Session

from app.config import Config
from app.connectwise import errors as cw_errors
from app.connectwise.client import Client
from app.connectwise.lines import invoice_line_calls
from app.connectwise.tenant_client import NotConnected, tenant_client
from app.invoices import payloads as p
from app.invoices.display_types import deciding_project, deciding_ticket
from app.invoices.document import InvoiceDocument
from app.invoices.errors import InvalidInvoiceData, InvoiceNotFound, InvoiceUnavailable
from app.invoices.hints import ReferenceHints, clean
from app.invoices.reconstruct import build_document as build_sections
from app.security.crypto import Keyring

log = logging.getLogger(__name__)
PAYLOADS_FORMAT = 1
LINE_FIELDS = {"procurement/products": p.PRODUCT_FIELDS, "time/entries": p.TIME_FIELDS,
               "expense/entries": p.EXPENSE_FIELDS}
_HEADER = "header"


# -- the value ---------------------------------------------------------------------------------------------------


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    """Plain JSON values again (dicts and lists), as ConnectWise sent them."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class InvoicePayloads:
    """One invoice as ConnectWise answered it: the raw header and the raw collections by name (line collections by
    API path, references by name; None where an optional reference was missing or forbidden). Read-only all
    the way down; ``header_json()`` and ``collections_json()`` give plain copies."""

    invoice_id: int
    header: Mapping[str, Any]
    collections: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "invoice_id", int(self.invoice_id))
        object.__setattr__(self, "header", _freeze(self.header))
        object.__setattr__(self, "collections", _freeze(self.collections))

    def header_json(self) -> Any:
        return _thaw(self.header)

    def collections_json(self) -> dict[str, Any]:
        return _thaw(self.collections)

    def to_json(self) -> str:
        return json.dumps({"format": PAYLOADS_FORMAT, "invoice_id": self.invoice_id, "header": self.header_json(),
                           "collections": self.collections_json()}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> InvoicePayloads:
        """Payloads from ``to_json()``'s text; ValueError when it is not that."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != PAYLOADS_FORMAT:
            raise ValueError("not invoice payloads of a known format")
        invoice_id, header, collections = data.get("invoice_id"), data.get("header"), data.get("collections")
        if (isinstance(invoice_id, bool) or not isinstance(invoice_id, int) or not isinstance(header, dict)
                or not isinstance(collections, dict)):
            raise ValueError("invoice payloads without an invoice id, header or collections")
        return cls(invoice_id, header, collections)


# -- fetching ----------------------------------------------------------------------------------------------------


def _parse_header(raw: Any, invoice_id: int) -> p.InvoiceHeader:
    header = p.parse_header(raw)
    if header.id != invoice_id:
        raise InvalidInvoiceData(f"ConnectWise answered invoice {invoice_id} with another invoice")
    return header


def reference_ids(h: p.InvoiceHeader) -> dict[str, int]:
    """The reference records this header names, by name and ConnectWise id (what a hint remembers)."""
    refs: dict[str, int] = {}
    if h.billing_setup_id is not None:
        refs["setup"] = h.billing_setup_id
    refs["company"] = h.bill_to_company_id or h.company_id
    if h.tax_code_id is not None:
        refs["tax_code"] = h.tax_code_id
    if h.agreement_id is not None and (h.agreement_amount or h.type == "Agreement"):
        refs["additions"] = h.agreement_id
    if h.payments or h.credits:
        refs["payments"] = h.id
    # Only the project or ticket whose billing method decides the display type (Fixed Fee or not).
    project, ticket = deciding_project(h), deciding_ticket(h)
    if project is not None:
        refs["project"] = project
    elif ticket:
        refs["ticket"] = ticket
    return refs


def references_of(payloads: InvoicePayloads) -> dict[str, int]:
    """``reference_ids`` of the payloads' header: the hints that fetch these payloads again in one round."""
    return reference_ids(_parse_header(payloads.header_json(), payloads.invoice_id))


# Each reference record: read as a list (get_all) or one object, its path by id, and its fields= projection.
REFERENCES: dict[str, tuple[bool, str, tuple[str, ...] | None]] = {
    "setup": (False, "finance/billingSetups/{}", None),
    "company": (False, "company/companies/{}", p.COMPANY_FIELDS),
    "tax_code": (False, "finance/taxCodes/{}", None),
    "additions": (True, "finance/agreements/{}/additions", p.ADDITION_FIELDS),
    "payments": (True, "finance/invoices/{}/payments", p.PAYMENT_FIELDS),
    "project": (False, "project/projects/{}", p.PROJECT_FIELDS),
    "ticket": (False, "service/tickets/{}", p.TICKET_FIELDS),
}


def _reference_call(client: Client, name: str, ref: int) -> Callable[[], Any]:
    many, path, fields = REFERENCES[name]
    url = path.format(int(ref))
    if many:
        return lambda: client.get_all(url, fields=fields)
    return lambda: client.get(url, {"fields": ",".join(fields)} if fields else None)


def _read_header(client: Client, invoice_id: int) -> Any:
    try:
        return client.get(f"finance/invoices/{invoice_id}")
    except cw_errors.NotFound as exc:
        raise InvoiceNotFound(invoice_id) from exc


def _tolerant(call: Callable[[], Any], name: str, invoice_id: int) -> Callable[[], Any]:
    """Optional context (remit-to, tax id, captions) must not sink the invoice: missing or forbidden → None."""

    def run() -> Any:
        try:
            return call()
        except (cw_errors.NotFound, cw_errors.PermissionMissing) as exc:
            log.info("invoice %d: %s unavailable from ConnectWise (%s); shown without it", invoice_id, name,
                     type(exc).__name__)
            return None

    return run


class _Failed:
    """A hinted read that failed: asked again, the normal way, in the second round."""


_FAILED = _Failed()


def _hinted(call: Callable[[], Any], name: str, invoice_id: int) -> Callable[[], Any]:
    # A hint may be wrong, so its read must not sink the render before the header says whether it is needed.
    tolerant = _tolerant(call, name, invoice_id)

    def run() -> Any:
        try:
            return tolerant()
        except cw_errors.Busy:
            raise  # the second round would wait for the same budget
        except cw_errors.ConnectWiseError:
            return _FAILED

    return run


def _run(client: Client, calls: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    names = list(calls)
    return dict(zip(names, client.parallel([calls[n] for n in names]), strict=True))


def _fetch(client: Client, invoice_id: int, hints: Mapping[str, int] | None,
           ) -> tuple[InvoicePayloads, p.InvoiceHeader, dict[str, int]]:
    invoice_id = int(invoice_id)
    lines = invoice_line_calls(client, invoice_id, LINE_FIELDS)
    hinted = {name: ref for name, ref in clean(hints).items() if name in REFERENCES}
    got: dict[str, Any] = {}
    if hinted:
        got = _run(client, {_HEADER: lambda: _read_header(client, invoice_id), **lines,
                            **{n: _hinted(_reference_call(client, n, ref), n, invoice_id)
                               for n, ref in hinted.items()}})
        raw_header = got.pop(_HEADER)
    else:
        raw_header = _read_header(client, invoice_id)
    header = _parse_header(raw_header, invoice_id)
    refs = reference_ids(header)
    later: dict[str, Callable[[], Any]] = {path: call for path, call in lines.items() if path not in got}
    for name, ref in refs.items():
        if hinted.get(name) != ref or got.get(name) is _FAILED:
            later[name] = _tolerant(_reference_call(client, name, ref), name, invoice_id)
    if later:
        got.update(_run(client, later))
    collections = {name: got[name] for name in (*lines, *refs)}
    return InvoicePayloads(invoice_id, raw_header, collections), header, refs


def fetch_payloads(client: Client, invoice_id: int, hints: Mapping[str, int] | None = None) -> InvoicePayloads:
    """The invoice's header and raw collections, in one round when ``hints`` are right, else two.

    Raises InvoiceNotFound, InvalidInvoiceData (the header is not this invoice), ConnectWiseError."""
    return _fetch(client, invoice_id, hints)[0]


# -- building ----------------------------------------------------------------------------------------------------


def build_document(payloads: InvoicePayloads, tenant: str | None = None) -> InvoiceDocument:
    """The document of these payloads (pure; ``tenant`` only names the tenant in log lines)."""
    header = _parse_header(payloads.header_json(), payloads.invoice_id)
    return build_sections(header, payloads.collections_json(), tenant=tenant)


def reconstruct(client: Client, invoice_id: int, hints: Mapping[str, int] | None = None) -> InvoiceDocument:
    """Fetch and build. Raises InvoiceNotFound, InvalidInvoiceData, ConnectWiseError."""
    payloads, header, _refs = _fetch(client, invoice_id, hints)
    return build_sections(header, payloads.collections_json(), tenant=client.tenant_id)


# -- what the media call -----------------------------------------------------------------------------------------


def open_client(session: Session, keyring: Keyring, config: Config, redis: Any, *, for_page: bool = True) -> Client:
    """The tenant's ConnectWise client (use it as a context manager). Raises InvoiceUnavailable."""
    try:
        return tenant_client(session, keyring, config, redis, for_page=for_page)
    except NotConnected as exc:
        raise InvoiceUnavailable.not_connected() from exc
    except cw_errors.ConnectWiseError as exc:
        raise InvoiceUnavailable.of(exc) from exc


def load_document(client: Client, invoice_id: int, *, hints: ReferenceHints | None = None) -> InvoiceDocument:
    """The invoice's document, using and then updating the tenant's reference hints. Raises InvoiceUnavailable."""
    known = hints.get(client.tenant_id, invoice_id) if hints is not None else {}
    try:
        payloads, header, refs = _fetch(client, invoice_id, known)
        doc = build_sections(header, payloads.collections_json(), tenant=client.tenant_id)
    except (InvoiceNotFound, cw_errors.ConnectWiseError) as exc:
        raise InvoiceUnavailable.of(exc) from exc
    if hints is not None and refs != known:
        hints.put(client.tenant_id, invoice_id, refs)
    return doc


def require_invoice(client: Client, invoice_id: int) -> None:
    """Check that ConnectWise has the invoice (its id only, never cached). Raises InvoiceUnavailable."""
    try:
        client.get(f"finance/invoices/{int(invoice_id)}", {"fields": "id"}, cache=False)
    except cw_errors.NotFound as exc:
        raise InvoiceUnavailable.of(InvoiceNotFound(invoice_id)) from exc
    except cw_errors.ConnectWiseError as exc:
        raise InvoiceUnavailable.of(exc) from exc
