"""The invoices page's list: one page of recent ConnectWise invoices, searched and filtered server-side.

ConnectWise does the paging (``page``/``pageSize``) and the counting (``/count`` with the same conditions); we
never pull the whole list. Conditions are built only from validated pieces: a search term stripped to a safe
character set, a type from a fixed list, a status id that is an integer.

Rows are read by the records layer's tolerant mode: a row whose total, balance, currency or dates do not read is
still listed, marked (``InvoiceRow.degraded``), with "—" where an amount could not be read, never a silent zero.
The type shown is ``display_types.display_type``, the same one the invoice's own page shows; for that the page's
projects and tickets are asked how they bill, in one parallel round after the rows.

Each row also says what it is (``InvoiceRow.state``): the document's own reading (``view_model.invoice_state``:
credit memo, void, paid, nothing due, partly paid, overdue, open) from the row's type, status, balance, payments,
credits and due date, so the list's badge and the invoice's preview never disagree; the page
sums its totals and balances per currency, and the list sorts server-side by a whitelisted column (``SORTS``).
``receivables`` reads every invoice with a balance for the dashboard's open and overdue figures.
"""

from __future__ import annotations

import datetime as dt  # the `date` fields below would shadow the bare type
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.connectwise import errors as cw_errors
from app.connectwise.client import Client
from app.connectwise.records import USD, BillingStatusRecord, Currency, InvalidRecord, InvoiceHeader, billing_method
from app.invoices.display_types import deciding_project, deciding_ticket, display_type
from app.invoices.document import format_money
from app.invoices.view_model import DocumentState, invoice_state, state_badge

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
LIST_FIELDS = ("id", "invoiceNumber", "type", "applyToType", "applyToId", "status/id", "status/name", "company/id",
               "company/name", "date", "dueDate", "total", "balance", "payments", "credits", "currency", "project/id",
               "phase/id",
               "salesOrder/id", "ticket/id", "_info/lastUpdated")
UNREADABLE = "\u2014"  # shown instead of an amount ConnectWise sent in a form we cannot read
# Letters (any script), digits, space and the punctuation company names and invoice numbers use. Quotes,
# brackets, wildcards and backslashes never reach a ConnectWise condition.
_UNSAFE = re.compile(r"[^\w \-.&,/#@+()']", re.UNICODE)
_MAX_SEARCH = 60
# The columns a person may sort by and the ConnectWise field each one orders; anything else falls back to the default.
SORTS = {"number": "invoiceNumber", "company": "company/name", "date": "date", "due": "dueDate", "total": "total",
         "balance": "balance"}
DEFAULT_SORT, DEFAULT_DIR = "date", "desc"


@dataclass(frozen=True)
class InvoiceQuery:
    page: int = 1
    search: str = ""
    type: str = ""
    status_id: int | None = None
    sort: str = DEFAULT_SORT
    dir: str = DEFAULT_DIR

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> InvoiceQuery:
        """Read the page's query string; anything unusable falls back to "no filter" rather than an error."""
        try:
            page = min(max(int(args.get("page", "1")), 1), MAX_PAGE)
        except ValueError:
            page = 1
        kind = args.get("type", "")
        status = args.get("status", "")
        sort = args.get("sort", "")
        direction = args.get("dir", "")
        if sort not in SORTS:
            sort, direction = DEFAULT_SORT, DEFAULT_DIR
        elif direction not in ("asc", "desc"):
            direction = "asc" if sort in ("number", "company") else "desc"
        return cls(page=page, search=clean_search(args.get("q", "")), type=kind if kind in FILTER_TYPES else "",
                   status_id=int(status) if status.isdigit() and len(status) < 10 else None, sort=sort, dir=direction)

    def order_by(self) -> str:
        """ConnectWise's orderBy: the whitelisted field, then id the same way so paging is stable."""
        return f"{SORTS[self.sort]} {self.dir},id {self.dir}"

    def sorted_by(self, column: str) -> dict[str, Any]:
        """The query string for the column's header link: sort by it, or flip its direction; back to page 1."""
        if self.sort == column:
            direction = "asc" if self.dir == "desc" else "desc"
        else:
            direction = "asc" if column in ("number", "company") else "desc"
        return self.args(sort=column, dir=direction, page=1)

    def aria_sort(self, column: str) -> str:
        return ("ascending" if self.dir == "asc" else "descending") if self.sort == column else "none"

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
        values = {"q": self.search, "type": self.type, "status": self.status_id or "", "sort": self.sort,
                  "dir": self.dir, "page": self.page}
        values.update(changes)
        default_order = values["sort"] == DEFAULT_SORT and values["dir"] == DEFAULT_DIR
        return {k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)
                and not (default_order and k in ("sort", "dir"))}


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
    date: dt.date | None
    due_date: dt.date | None
    total: str
    balance: str
    open: bool
    degraded: tuple[str, ...] = ()  # fields of this row ConnectWise sent in a form we could not read
    state: str = "open"  # view_model.DocumentState.kind
    state_label: str = "Open"  # what the badge says, as the invoice's preview says it
    badge: str = "open"  # the badge's colour (view_model.state_badge)
    currency: Currency = USD
    total_amount: Decimal | None = None  # None when unreadable
    balance_amount: Decimal | None = None


@dataclass(frozen=True)
class PageTotal:
    currency: str
    total: str
    balance: str


@dataclass(frozen=True)
class InvoicePage:
    rows: list[InvoiceRow]
    total: int
    page: int
    pages: int
    sums: list[PageTotal] = field(default_factory=list)  # this page's total and balance, one line per currency


def list_invoices(client: Client, query: InvoiceQuery, page_size: int = PAGE_SIZE) -> InvoicePage:
    """One page of invoices, newest first, and the count, as two parallel requests (Fixed Fee first asks which
    projects bill a fixed fee), then how the page's projects and tickets bill (one parallel round, cached)."""
    projects: list[int] = []
    if query.type == FIXED_FEE:
        raw = client.get_all("project/projects", conditions='billingMethod = "FixedFee"', fields=["id"])
        projects = [r["id"] for r in raw if isinstance(r, dict) and isinstance(r.get("id"), int)]
    conditions = query.conditions(projects)
    params: dict[str, Any] = {"orderBy": query.order_by(), "page": query.page, "pageSize": page_size,
                              "fields": ",".join(LIST_FIELDS)}
    if conditions:
        params["conditions"] = conditions
    body, count = client.parallel([lambda: client.get("finance/invoices", params),
                                   lambda: client.count("finance/invoices", conditions)])
    headers = [h for h in (_header(r) for r in (body if isinstance(body, list) else [])) if h is not None]
    project_billing, ticket_billing = _billing_methods(client, headers)
    today = dt.date.today()
    rows = [_row(h, project_billing, ticket_billing, today) for h in headers]
    pages = max(1, -(-count // page_size))
    return InvoicePage(rows=rows, total=count, page=query.page, pages=min(pages, MAX_PAGE), sums=page_sums(rows))


def page_sums(rows: Iterable[InvoiceRow]) -> list[PageTotal]:
    """The rows' totals and balances added up per currency (rows with an unreadable amount leave it out)."""
    sums: dict[str, tuple[Currency, Decimal, Decimal]] = {}
    for row in rows:
        currency, total, balance = sums.get(row.currency.code, (row.currency, Decimal(0), Decimal(0)))
        sums[row.currency.code] = (currency, total + (row.total_amount or 0), balance + (row.balance_amount or 0))
    return [PageTotal(code, format_money(total, currency), format_money(balance, currency))
            for code, (currency, total, balance) in sums.items()]


def billing_statuses(client: Client) -> list[tuple[int, str]]:
    """(id, name) of every billing status ConnectWise has, inactive ones too (invoices keep them; "Void" is one),
    for the filter; read whole, not only the statuses on this page (cached by the client like any read)."""
    raw = client.get_all("finance/billingStatuses", fields=["id", "name", "inactiveFlag", "sortOrder"],
                         order_by="sortOrder asc,id asc")
    active: list[tuple[int, str]] = []
    inactive: list[tuple[int, str]] = []
    for r in raw:
        try:
            status = BillingStatusRecord.parse(r, tolerant=True)
        except InvalidRecord:
            continue
        if status.name and "name" not in status.degraded:
            (inactive if status.inactive else active).append((status.id, status.name[:60]))
    return active + [(sid, f"{name} (inactive)") for sid, name in inactive]


@dataclass(frozen=True)
class Receivables:
    """Invoices with money owed, and of those the ones past due: counts and totals per currency."""

    open_count: int
    open_totals: list[str]
    overdue_count: int
    overdue_totals: list[str]


RECEIVABLE_FIELDS = ("id", "type", "status/name", "dueDate", "balance", "currency")


def receivables(client: Client, today: dt.date) -> Receivables:
    """Every invoice with a balance owed (not credit memos, not void), read 1,000 a page through the client's short
    cache: how many and how much, and how many of them are past their due date."""
    raw = client.get_all("finance/invoices", conditions="balance > 0", fields=list(RECEIVABLE_FIELDS))
    open_sum: dict[str, tuple[Currency, Decimal]] = {}
    overdue_sum: dict[str, tuple[Currency, Decimal]] = {}
    open_count = overdue_count = 0
    for r in raw:
        h = _header(r)
        if h is None or "balance" in h.degraded or h.balance <= 0 or _state(h, today).kind in ("credit", "void"):
            continue
        open_count += 1
        _add(open_sum, h.currency, h.balance)
        if h.due_date is not None and h.due_date < today:
            overdue_count += 1
            _add(overdue_sum, h.currency, h.balance)
    return Receivables(open_count, _money(open_sum), overdue_count, _money(overdue_sum))


def _add(sums: dict[str, tuple[Currency, Decimal]], currency: Currency, amount: Decimal) -> None:
    _, total = sums.get(currency.code, (currency, Decimal(0)))
    sums[currency.code] = (currency, total + amount)


def _money(sums: dict[str, tuple[Currency, Decimal]]) -> list[str]:
    return [format_money(total, currency) for currency, total in sums.values()]


def recent_invoices(client: Client, n: int = 50) -> list[InvoiceRow]:
    """The newest ``n`` invoices (the branding preview's picker)."""
    return list_invoices(client, InvoiceQuery(), page_size=n).rows


def _header(r: Any) -> InvoiceHeader | None:
    """A list row, read tolerantly; None for one without a usable id (nothing could link to it)."""
    try:
        return InvoiceHeader.parse(r, USD, tolerant=True)
    except InvalidRecord:
        return None


def _billing_methods(client: Client, headers: Iterable[InvoiceHeader]) -> tuple[dict[int, str], dict[int, str]]:
    """billingMethod of each project and ticket that decides a row's display type, asked for in one round."""
    wanted = {"project/projects": sorted({i for h in headers if (i := deciding_project(h)) is not None}),
              "service/tickets": sorted({i for h in headers if (i := deciding_ticket(h)) is not None})}
    paths = [path for path, ids in wanted.items() if ids]
    calls = [_lookup(client, path, wanted[path]) for path in paths]
    found = dict(zip(paths, client.parallel(calls), strict=True))
    return found.get("project/projects", {}), found.get("service/tickets", {})


def _lookup(client: Client, path: str, ids: list[int]) -> Callable[[], dict[int, str]]:
    def run() -> dict[int, str]:
        conditions = f"id in ({','.join(str(int(i)) for i in ids)})"
        try:
            records = client.get_all(path, conditions=conditions, fields=["id", "billingMethod"])
        except (cw_errors.NotFound, cw_errors.PermissionMissing):
            return {}  # the invoice's own page does without it the same way (its type reads "Project"/"Standard")
        out = {}
        for record in records:
            if isinstance(record, dict) and isinstance(record.get("id"), int):
                out[record["id"]] = billing_method(record, path, tolerant=True)
        return out

    return run


def _state(h: InvoiceHeader, today: dt.date) -> DocumentState:
    """What the invoice is, read as its document reads it (``view_model.invoice_state``)."""
    return invoice_state(credit_memo=h.type == "CreditMemo", status=h.status,
                         balance=None if "balance" in h.degraded else h.balance, settled=h.payments + h.credits,
                         due_date=h.due_date, today=today)


def _row(h: InvoiceHeader, project_billing: dict[int, str], ticket_billing: dict[int, str],
         today: dt.date | None = None) -> InvoiceRow:
    project, ticket = deciding_project(h), deciding_ticket(h)
    state = _state(h, today or dt.date.today())
    label = display_type(h, project_billing.get(project, "") if project is not None else "",
                         ticket_billing.get(ticket, "") if ticket is not None else "")
    return InvoiceRow(
        id=h.id, number=_text(h.number) or str(h.id), type=h.type, type_label=label, status=_text(h.status),
        company=_text(h.company_name), date=h.date, due_date=h.due_date,
        total=UNREADABLE if "total" in h.degraded else format_money(h.total, h.currency),
        balance=UNREADABLE if "balance" in h.degraded else format_money(h.balance, h.currency),
        # An unreadable balance counts as open: better a second look than a missed unpaid invoice.
        open=h.balance != 0 or "balance" in h.degraded, degraded=h.degraded,
        state=state.kind, state_label=state.label, badge=state_badge(state), currency=h.currency,
        total_amount=None if "total" in h.degraded else h.total,
        balance_amount=None if "balance" in h.degraded else h.balance,
    )


def _text(value: str) -> str:
    return value[:200]
