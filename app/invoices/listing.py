"""The invoices page's list: one page of recent ConnectWise invoices, searched and filtered server-side.

ConnectWise does the paging (``page``/``pageSize``) and the counting (``/count`` with the same conditions); we
never pull the whole list. Conditions are built only from validated pieces: a search term stripped to a safe
character set, a type from a fixed list, a status id that is an integer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from app.connectwise.client import Client
from app.invoices.document import USD, Currency, format_money
from app.invoices.errors import InvalidInvoiceData
from app.invoices.payloads import parse_currency

PAGE_SIZE = 25
MAX_PAGE = 400  # 10,000 invoices deep is as far as a person pages; beyond that, search
# ConnectWise's invoice types (Invoice.type) and how we name them.
TYPES = {"Standard": "Standard", "Agreement": "Agreement", "CreditMemo": "Credit Memo",
         "DownPayment": "Down Payment", "Miscellaneous": "Miscellaneous", "Progress": "Progress"}
# Display types that ConnectWise files as Standard invoices applied to something (Invoice.applyToType).
APPLIED_TYPES = {"Project": "Project", "ProjectPhase": "Phase", "SalesOrder": "Sales Order"}
FIXED_FEE = "FixedFee"
# What the filter offers: ConnectWise's types, the applied ones, and Fixed Fee (invoices of fixed-fee projects).
FILTER_TYPES = {**TYPES, **APPLIED_TYPES, FIXED_FEE: "Fixed Fee"}
FIXED_FEE_PROJECTS_MAX = 200  # one `in (...)` condition; more fixed-fee projects than this are not filtered
LIST_FIELDS = ("id", "invoiceNumber", "type", "applyToType", "status/id", "status/name", "company/id",
               "company/name", "date", "dueDate", "total", "balance", "currency")
# Letters (any script), digits, space and the punctuation company names and invoice numbers use. Quotes,
# brackets, wildcards and backslashes never reach a ConnectWise condition.
_UNSAFE = re.compile(r"[^\w \-.&,/#@+()']", re.UNICODE)
_MAX_SEARCH = 60


@dataclass(frozen=True)
class InvoiceQuery:
    page: int = 1
    search: str = ""
    type: str = ""
    status_id: int | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> InvoiceQuery:
        """Read the page's query string; anything unusable falls back to "no filter" rather than an error."""
        try:
            page = min(max(int(args.get("page", "1")), 1), MAX_PAGE)
        except ValueError:
            page = 1
        kind = args.get("type", "")
        status = args.get("status", "")
        return cls(page=page, search=clean_search(args.get("q", "")), type=kind if kind in FILTER_TYPES else "",
                   status_id=int(status) if status.isdigit() and len(status) < 10 else None)

    def conditions(self, fixed_fee_projects: Sequence[int] = ()) -> str | None:
        """The ConnectWise condition; every value is from a fixed list, an integer, or cleaned search text."""
        parts = []
        if self.search:
            # Inside double quotes; clean_search() has removed every quote, bracket and wildcard.
            parts.append(f'(invoiceNumber contains "{self.search}" or company/name contains "{self.search}")')
        if self.type == "Standard":
            applied = ", ".join(f'"{k}"' for k in APPLIED_TYPES)
            parts.append(f'type = "Standard" and (applyToType = null or applyToType not in ({applied}))')
        elif self.type in APPLIED_TYPES:
            parts.append(f'applyToType = "{self.type}"')
        elif self.type == FIXED_FEE:
            ids = ", ".join(str(int(i)) for i in fixed_fee_projects[:FIXED_FEE_PROJECTS_MAX]) or "0"
            parts.append(f"project/id in ({ids})")
        elif self.type:
            parts.append(f'type = "{self.type}"')
        if self.status_id is not None:
            parts.append(f"status/id = {int(self.status_id)}")
        return " and ".join(parts) or None

    def args(self, **changes: Any) -> dict[str, Any]:
        """The query string for a link to this list with ``changes`` (e.g. another page)."""
        values = {"q": self.search, "type": self.type, "status": self.status_id or "", "page": self.page}
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)}


def clean_search(raw: str) -> str:
    return " ".join(_UNSAFE.sub(" ", raw or "").split())[:_MAX_SEARCH]


@dataclass(frozen=True)
class InvoiceRow:
    id: int
    number: str
    type: str
    type_label: str
    status: str
    company: str
    date: date | None
    due_date: date | None
    total: str
    balance: str
    open: bool


@dataclass(frozen=True)
class InvoicePage:
    rows: list[InvoiceRow]
    total: int
    page: int
    pages: int


def list_invoices(client: Client, query: InvoiceQuery, page_size: int = PAGE_SIZE) -> InvoicePage:
    """One page of invoices, newest first, and the count, as two parallel requests (Fixed Fee first asks which
    projects bill a fixed fee)."""
    projects: list[int] = []
    if query.type == FIXED_FEE:
        raw = client.get_all("project/projects", conditions='billingMethod = "FixedFee"', fields=["id"])
        projects = [r["id"] for r in raw if isinstance(r, dict) and isinstance(r.get("id"), int)]
    conditions = query.conditions(projects)
    params: dict[str, Any] = {"orderBy": "date desc,id desc", "page": query.page, "pageSize": page_size,
                              "fields": ",".join(LIST_FIELDS)}
    if conditions:
        params["conditions"] = conditions
    body, count = client.parallel([lambda: client.get("finance/invoices", params),
                                   lambda: client.count("finance/invoices", conditions)])
    rows = [row for row in (_row(r) for r in (body if isinstance(body, list) else [])) if row is not None]
    pages = max(1, -(-count // page_size))
    return InvoicePage(rows=rows, total=count, page=query.page, pages=min(pages, MAX_PAGE))


def billing_statuses(client: Client) -> list[tuple[int, str]]:
    """(id, name) of every billing status, for the filter (cached by the client like any read)."""
    raw = client.get("finance/billingStatuses", {"fields": "id,name,inactiveFlag", "pageSize": 1000})
    out = []
    for r in raw if isinstance(raw, list) else []:
        if isinstance(r, dict) and isinstance(r.get("id"), int) and isinstance(r.get("name"), str):
            if not r.get("inactiveFlag"):
                out.append((r["id"], r["name"][:60]))
    return out


def recent_invoices(client: Client, n: int = 50) -> list[InvoiceRow]:
    """The newest ``n`` invoices (the branding preview's picker)."""
    return list_invoices(client, InvoiceQuery(), page_size=n).rows


def _row(r: Any) -> InvoiceRow | None:
    if not isinstance(r, dict) or not isinstance(r.get("id"), int):
        return None
    try:
        currency = parse_currency(r.get("currency"), USD) if isinstance(r.get("currency"), dict) else USD
    except InvalidInvoiceData:
        currency = USD  # a list row still shows; the invoice itself will say what is wrong when opened
    status = r.get("status") if isinstance(r.get("status"), dict) else {}
    company = r.get("company") if isinstance(r.get("company"), dict) else {}
    kind = r.get("type") if isinstance(r.get("type"), str) else ""
    balance = _money(r.get("balance"))
    return InvoiceRow(
        id=r["id"], number=_text(r.get("invoiceNumber")) or str(r["id"]), type=kind,
        type_label=_type_label(kind, _text(r.get("applyToType"))), status=_text(status.get("name")),
        company=_text(company.get("name")), date=_date(r.get("date")), due_date=_date(r.get("dueDate")),
        total=_fmt(_money(r.get("total")), currency), balance=_fmt(balance, currency), open=balance != 0,
    )


def _type_label(kind: str, apply_to: str) -> str:
    label = TYPES.get(kind, kind or "Invoice")
    if kind == "Standard" and apply_to in ("Project", "ProjectPhase", "SalesOrder"):
        return {"Project": "Project", "ProjectPhase": "Phase", "SalesOrder": "Sales Order"}[apply_to]
    return label


def _text(value: Any) -> str:
    return value.strip()[:200] if isinstance(value, str) else ""


def _money(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _fmt(amount: Decimal, currency: Currency) -> str:
    return format_money(amount, currency)


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return datetime.fromisoformat(value[:10]).date()
    except ValueError:
        return None
