"""The review inbox (``/review/``): which invoices each tab holds, their counts, search, filters, sorting and paging,
read from ``review_invoices`` (and the reviewers and read marks beside it) only, never from ConnectWise.

Tabs, each a condition on an invoice's inbox row:

- **Needs review**: open in ConnectWise and no decision yet (``open`` and state ``needs_review``).
- **Flagged**: open, with at least one error or warning flag neither cleared nor marked OK (``blocking_flags > 0``),
  whatever the decision (an approval through the soft gate keeps its flags in view).
- **Approved** / **Rejected**: open, and the reviewers' outcome is approved / rejected.
- **Closed**: reviews closed here, or invoices that left the open set (sent or closed in ConnectWise), in the last
  ``CLOSED_RECENT_DAYS`` days (by when they were closed or left).
- **All**: every open invoice, whatever its state.

Search matches the invoice number or the company name, case-insensitive, with leading ``#`` stripped, on exactly the
expression of the trigram index (``lower(invoice_number || ' ' || company_name)``); at 10,000 open invoices the
planner prefers filtering the tenant's open rows in date order (about 5 ms, `make bench-inbox`), since under RLS it
cannot tell one tenant's share of the table. Filters: display type, billing status,
reviewer (a user or a ConnectWise member), "only mine" (I am one of its reviewers), "unread" (no read mark of mine
at or after the row's ``changed_at``). The tab counts apply the search and filters, and all six cost one query.
Pages hold ``PAGE_SIZE`` rows, sorted by date, number, company, amount or worst flag, the row id breaking ties.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from redis import Redis
from sqlalchemy import ColumnElement, Select, and_, exists, false, func, literal_column, or_, select
from sqlalchemy.orm import Session, load_only

from app.connectwise.records import Currency
from app.invoices.document import DISPLAY_TYPES, format_money
from app.review import reviewers as reviewer_panel
from app.review.models import WORST, ReadMark, Reviewer, ReviewInvoice, Snapshot
from app.review.snapshots import document_of
from app.security.crypto import Keyring

PAGE_SIZE = 50
CLOSED_RECENT_DAYS = 90
MAX_SEARCH = 60
TABS: dict[str, str] = {"needs_review": "Needs review", "flagged": "Flagged", "approved": "Approved",
                        "rejected": "Rejected", "closed": "Closed", "all": "All"}
DEFAULT_TAB = "needs_review"
# Sort key -> its first direction (descending for "newest", "largest", "worst" first).
SORTS: dict[str, tuple[str, bool]] = {"date": ("Date", True), "number": ("Number", False),
                                       "company": ("Company", False), "amount": ("Amount", True),
                                       "flag": ("Flags", True)}
DEFAULT_SORT = "date"
TYPE_GLYPHS = {"Standard": "ST", "Fixed Fee": "FF", "Project": "PR", "Phase": "PH", "Sales Order": "SO",
               "Agreement": "AG", "Credit Memo": "CM", "Down Payment": "DP", "Miscellaneous": "MI", "Progress": "PG"}
WORST_NAMES = {number: name for name, number in WORST.items()}
CURRENCY_CACHE_SECONDS = 3600
_CURRENCY_FIELDS = ("code", "symbol", "decimals", "decimal_sep", "group_sep", "symbol_first", "negative_parentheses",
                    "show_symbol", "show_code")


@dataclass(frozen=True)
class InboxQuery:
    """What the inbox shows, read from the URL; anything unreadable falls back to the default."""

    tab: str = DEFAULT_TAB
    search: str = ""
    display_type: str = ""
    status_id: int | None = None
    reviewer: str = ""  # "u-<user uuid>" or "m-<ConnectWise member id>"
    mine: bool = False
    unread: bool = False
    sort: str = DEFAULT_SORT
    desc: bool = SORTS[DEFAULT_SORT][1]
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> InboxQuery:
        tab = args.get("tab", "")
        sort = args.get("sort", "")
        sort = sort if sort in SORTS else DEFAULT_SORT
        direction = args.get("dir", "")
        status, page = args.get("status", "").strip(), args.get("page", "").strip()
        kind = args.get("type", "")
        return cls(tab=tab if tab in TABS else DEFAULT_TAB, search=clean_search(args.get("q", "")),
                   display_type=kind if kind in DISPLAY_TYPES else "",
                   status_id=int(status) if status.isdigit() and len(status) < 10 else None,
                   reviewer=_reviewer_key(args.get("reviewer", "")), mine=args.get("mine") in ("1", "on"),
                   unread=args.get("unread") in ("1", "on"), sort=sort,
                   desc=direction == "desc" if direction in ("asc", "desc") else SORTS[sort][1],
                   page=int(page) if page.isdigit() and 0 < len(page) < 7 and int(page) > 0 else 1)

    @property
    def filtered(self) -> bool:
        """Whether a search or filter narrows the rows (an empty tab then says "no match", not "all caught up")."""
        return bool(self.search or self.display_type or self.status_id is not None or self.reviewer or self.mine
                    or self.unread)

    def args(self, **changes: Any) -> dict[str, str]:
        """The URL arguments of this query (defaults left out), with ``changes``; a change resets the page."""
        q = replace(self, **({"page": 1} | changes))
        out = {"tab": q.tab if q.tab != DEFAULT_TAB else "", "q": q.search, "type": q.display_type,
               "status": "" if q.status_id is None else str(q.status_id), "reviewer": q.reviewer,
               "mine": "1" if q.mine else "", "unread": "1" if q.unread else "",
               "sort": q.sort if q.sort != DEFAULT_SORT else "",
               "dir": ("desc" if q.desc else "asc") if q.desc != SORTS[q.sort][1] else "",
               "page": str(q.page) if q.page > 1 else ""}
        return {k: v for k, v in out.items() if v}

    def sorted_by(self, key: str) -> dict[str, str]:
        """The arguments for a click on the ``key`` column: the same column again flips the direction."""
        desc = (not self.desc) if key == self.sort else SORTS[key][1]
        return self.args(sort=key, desc=desc)


def clean_search(text: str) -> str:
    """What the search box matches on: trimmed, lower-case, leading ``#`` dropped, at most ``MAX_SEARCH`` long."""
    return " ".join(text.split()).lstrip("#").strip().lower()[:MAX_SEARCH]


def _reviewer_key(value: str) -> str:
    kind, _, ident = value.partition("-")
    if kind == "u":
        try:
            return f"u-{uuid.UUID(ident)}"
        except ValueError:
            return ""
    return f"m-{int(ident)}" if kind == "m" and ident.isdigit() and len(ident) < 10 else ""


@dataclass(frozen=True)
class InboxRow:
    invoice_id: int
    number: str
    company: str
    display_type: str
    glyph: str
    time_count: int
    product_count: int
    expense_count: int
    amount: str
    status_name: str
    invoice_date: dt.date | None
    date_label: str  # "3 Nov", or "3 Nov 2025" from another year
    state: str
    worst: str  # none | info | warning | error
    open_flags: int
    blocking_flags: int
    unread: bool
    avatars: Sequence[Any] = ()


@dataclass(frozen=True)
class Inbox:
    query: InboxQuery
    counts: dict[str, int]
    rows: list[InboxRow]
    page: int
    pages: int

    @property
    def total(self) -> int:
        return self.counts[self.query.tab]

    @property
    def empty_everywhere(self) -> bool:
        """No row in any tab (with these filters)."""
        return not any(self.counts.values())


@dataclass(frozen=True)
class Options:
    """The choices of the filter selects (display types, the billing statuses and reviewers the rows carry) and,
    for the page's summary line, how many open invoices have each severity as their worst open flag."""

    types: tuple[str, ...]
    statuses: list[tuple[int, str]]
    reviewers: list[tuple[str, str]] = field(default_factory=list)
    worst: dict[str, int] = field(default_factory=dict)


# -- conditions ----------------------------------------------------------------------------------------------------


def _search_text() -> ColumnElement[str]:
    # Exactly the trigram index's expression (a literal ' ', not a bound parameter), so the planner can use it.
    return func.lower(ReviewInvoice.invoice_number + literal_column("' '") + ReviewInvoice.company_name)


def _like_pattern(search: str) -> str:
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"  # PostgreSQL's LIKE escapes with a backslash by default


def tab_condition(tab: str, now: dt.datetime) -> ColumnElement[bool]:
    r = ReviewInvoice
    since = now - dt.timedelta(days=CLOSED_RECENT_DAYS)
    if tab == "flagged":
        return and_(r.is_open, r.blocking_flags > 0)
    if tab in ("needs_review", "approved", "rejected"):
        return and_(r.is_open, r.state == tab)
    if tab == "closed":
        return or_(and_(r.state == "closed", func.coalesce(r.state_at, r.changed_at) >= since),
                   and_(~r.is_open, func.coalesce(r.left_open_at, r.changed_at) >= since))
    return r.is_open.expression


def _read_since_change(user_id: uuid.UUID) -> ColumnElement[bool]:
    return exists().where(ReadMark.invoice_id == ReviewInvoice.invoice_id, ReadMark.user_id == user_id,
                          ReadMark.read_at >= ReviewInvoice.changed_at)


def filters(query: InboxQuery, user_id: uuid.UUID | None) -> list[ColumnElement[bool]]:
    """The search and filter conditions (every tab and count applies them)."""
    r = ReviewInvoice
    out: list[ColumnElement[bool]] = []
    if query.search:
        out.append(_search_text().like(_like_pattern(query.search)))
    if query.display_type:
        out.append(r.display_type == query.display_type)
    if query.status_id is not None:
        out.append(r.status_id == query.status_id)
    if query.reviewer:
        kind, _, ident = query.reviewer.partition("-")
        who = Reviewer.user_id == uuid.UUID(ident) if kind == "u" else Reviewer.member_id == int(ident)
        out.append(exists().where(Reviewer.invoice_id == r.invoice_id, who))
    if query.mine:
        out.append(exists().where(Reviewer.invoice_id == r.invoice_id, Reviewer.user_id == user_id)
                   if user_id is not None else false())
    if query.unread and user_id is not None:
        out.append(~_read_since_change(user_id))
    return out


def _order(query: InboxQuery) -> list[Any]:
    r = ReviewInvoice
    keys: dict[str, list[Any]] = {"date": [r.invoice_date], "number": [func.lower(r.invoice_number)],
                                  "company": [func.lower(r.company_name)], "amount": [r.total],
                                  "flag": [r.worst_flag, r.blocking_flags, r.open_flags]}
    columns = [c.desc() if query.desc else c.asc() for c in keys[query.sort]]
    # The id against the direction, as the tab index holds it (invoice_date DESC, id): both ways read it in order.
    return [*columns, r.id.asc() if query.desc else r.id.desc()]


# -- queries -------------------------------------------------------------------------------------------------------


def counts_statement(query: InboxQuery, user_id: uuid.UUID | None, now: dt.datetime) -> Select[Any]:
    """Every tab's count under the query's search and filters: ``count(*) FILTER (WHERE <tab>)`` six times."""
    columns = [func.count().filter(tab_condition(tab, now)).label(tab) for tab in TABS]
    return select(*columns).select_from(ReviewInvoice).where(*filters(query, user_id))


def counts(session: Session, query: InboxQuery, user_id: uuid.UUID | None, now: dt.datetime) -> dict[str, int]:
    """Every tab's count, in one query."""
    row = session.execute(counts_statement(query, user_id, now)).one()
    return {tab: int(row._mapping[tab]) for tab in TABS}


def page_statement(query: InboxQuery, user_id: uuid.UUID | None, now: dt.datetime, page: int) -> Select[Any]:
    """One page of the query's tab."""
    return (select(ReviewInvoice).where(tab_condition(query.tab, now), *filters(query, user_id))
            .order_by(*_order(query)).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))


def page_rows(session: Session, query: InboxQuery, user_id: uuid.UUID | None, now: dt.datetime,
              page: int) -> list[tuple[ReviewInvoice, bool]]:
    """One page of the query's tab, each row with whether it is unread for this user (read marks are looked up
    for the page's rows only, not for the rows an offset skips)."""
    rows = list(session.execute(page_statement(query, user_id, now, page)).scalars())
    read: dict[int, dt.datetime] = {}
    if user_id is not None and rows:
        read = dict(session.execute(select(ReadMark.invoice_id, ReadMark.read_at).where(
            ReadMark.user_id == user_id, ReadMark.invoice_id.in_([r.invoice_id for r in rows]))).tuples().all())
    return [(r, r.invoice_id not in read or read[r.invoice_id] < r.changed_at) for r in rows]


def load(session: Session, redis: Redis | None, keyring: Keyring, query: InboxQuery, user_id: uuid.UUID | None,
         now: dt.datetime | None = None, tz: dt.tzinfo = dt.UTC) -> Inbox:
    """The inbox for this user: the tab counts and the asked page (past the last page: the last one); ``tz`` is
    the workspace's zone, for the reviewers' "Approved · Today 14:32"."""
    now = now or dt.datetime.now(dt.UTC)
    tab_counts = counts(session, query, user_id, now)
    pages = max(1, -(-tab_counts[query.tab] // PAGE_SIZE))
    page = min(query.page, pages)
    found = page_rows(session, query, user_id, now, page)
    ids = [row.invoice_id for row, _ in found]
    avatars = _avatars(session, ids, tz)
    money = currency_formats(session, redis, keyring, [row for row, _ in found])
    rows = [_row(row, unread, money, avatars.get(row.invoice_id, ()), now.date()) for row, unread in found]
    return Inbox(replace(query, page=page), tab_counts, rows, page, pages)


def _avatars(session: Session, invoice_ids: list[int], tz: dt.tzinfo) -> Mapping[int, Sequence[Any]]:
    """The reviewers module owns how a reviewer is drawn (initials, state); one query for the page's rows."""
    return reviewer_panel.avatars_for(session, invoice_ids, tz) if invoice_ids else {}


def day_label(day: dt.date | None, today: dt.date) -> str:
    if day is None:
        return ""
    return f"{day.day} {day:%b}" if day.year == today.year else f"{day.day} {day:%b %Y}"


def _row(r: ReviewInvoice, unread: bool, money: Mapping[str, Currency], avatars: Sequence[Any],
         today: dt.date) -> InboxRow:
    return InboxRow(invoice_id=r.invoice_id, number=r.invoice_number, company=r.company_name,
                    display_type=r.display_type, glyph=TYPE_GLYPHS.get(r.display_type, r.display_type[:2].upper()),
                    time_count=r.time_count, product_count=r.product_count, expense_count=r.expense_count,
                    amount=format_money(Decimal(r.total), money.get(r.currency) or fallback_currency(r.currency)),
                    status_name=r.status_name, invoice_date=r.invoice_date,
                    date_label=day_label(r.invoice_date, today), state=r.state,
                    worst=WORST_NAMES.get(r.worst_flag, "none"), open_flags=r.open_flags,
                    blocking_flags=r.blocking_flags, unread=unread, avatars=avatars)


def status_summary_statement() -> Select[Any]:
    """Per billing status of the open rows: its name and how many have an error, warning or info as worst flag."""
    r = ReviewInvoice
    return (select(r.status_id, func.min(r.status_name),
                   *[func.count().filter(r.worst_flag == WORST[s]) for s in ("error", "warning", "info")])
            .where(r.is_open).group_by(r.status_id).order_by(func.min(r.status_name)))


def reviewer_choices_statement() -> Select[Any]:
    """Everyone who reviews an invoice of the tenant: user or member, and a name."""
    return (select(Reviewer.user_id, Reviewer.member_id, func.min(Reviewer.name))
            .group_by(Reviewer.user_id, Reviewer.member_id).order_by(func.min(Reviewer.name)))


def options(session: Session) -> Options:
    """The filter choices and the worst-flag summary: one pass over the open rows, grouped by billing status, and
    one over the reviewers."""
    by_status = session.execute(status_summary_statement()).tuples().all()
    people = session.execute(reviewer_choices_statement()).tuples().all()
    reviewers = [(f"u-{user_id}" if user_id is not None else f"m-{member_id}", name)
                 for user_id, member_id, name in people]
    worst = {s: sum(int(row[2 + n]) for row in by_status) for n, s in enumerate(("error", "warning", "info"))}
    return Options(DISPLAY_TYPES, [(int(row[0]), row[1]) for row in by_status if row[0] is not None], reviewers,
                   worst)


# -- money in each invoice's own currency format -------------------------------------------------------------------


def fallback_currency(code: str) -> Currency:
    """An amount whose currency format we have not stored: two decimals and the code ("1,234.50 CAD")."""
    if code == "USD":
        return Currency("USD", "$", 2, ".", ",", True)
    return Currency(code or "", "", 2, ".", ",", True, show_symbol=False, show_code=bool(code))


def currency_formats(session: Session, redis: Redis | None, keyring: Keyring,
                     rows: Sequence[ReviewInvoice]) -> dict[str, Currency]:
    """The ConnectWise currency format (symbol, separators, decimals) of each currency on these rows, as their
    snapshots' documents hold it; cached in Redis per tenant and code, so a page decrypts at most one document per
    currency it has not seen within the hour. A currency missing here is shown by ``fallback_currency``."""
    found: dict[str, Currency] = {}
    wanted: set[str] = set()
    for code in {row.currency for row in rows}:
        cached = _cached_currency(redis, rows[0].tenant_id, code)
        if isinstance(cached, Currency):
            found[code] = cached
        elif cached is None:
            wanted.add(code)
    if not wanted:
        return found
    # One snapshot per currency among the page's invoices (any of them may have left the open set), then only that
    # one's document: the documents are large and the payloads larger still.
    picked: dict[str, int] = {}
    for invoice_id, code in session.execute(select(Snapshot.invoice_id, Snapshot.currency).where(
            Snapshot.invoice_id.in_([r.invoice_id for r in rows if r.currency in wanted]))).tuples():
        picked.setdefault(code, invoice_id)
    if picked:
        snapshots = session.execute(select(Snapshot).options(load_only(
            Snapshot.tenant_id, Snapshot.invoice_id, Snapshot.currency, Snapshot.document_enc))
            .where(Snapshot.invoice_id.in_(sorted(picked.values())))).scalars()
        for snapshot in snapshots:
            currency = _currency_of(document_of(keyring, snapshot).get("currency"))
            if currency is not None:
                found[snapshot.currency] = currency
    if redis is not None:
        tenant_id = rows[0].tenant_id
        for code in wanted:
            # A currency no snapshot holds (its invoices left the open set) is remembered too, for a shorter while.
            known = found.get(code)
            value = json.dumps({f: getattr(known, f) for f in _CURRENCY_FIELDS}) if known else "{}"
            redis.set(_currency_key(tenant_id, code), value,
                      ex=CURRENCY_CACHE_SECONDS if known else CURRENCY_CACHE_SECONDS // 6)
    return found


def _currency_key(tenant_id: uuid.UUID, code: str) -> str:
    return f"bi:review:currency:{tenant_id}:{code}"


def _cached_currency(redis: Redis | None, tenant_id: uuid.UUID, code: str) -> Currency | None | bool:
    """The cached format; False when it is known that no snapshot holds one; None when nothing is cached."""
    if redis is None:
        return None
    raw = redis.get(_currency_key(tenant_id, code))
    if not isinstance(raw, bytes | str):
        return None
    return _currency_of(json.loads(raw)) or False


def _currency_of(data: Any) -> Currency | None:
    """A ``Currency`` from its stored JSON, or None when it does not read as one."""
    if not isinstance(data, dict):
        return None
    try:
        values = {f: data[f] for f in _CURRENCY_FIELDS}
    except KeyError:
        return None
    texts, flags = ("code", "symbol", "decimal_sep", "group_sep"), _CURRENCY_FIELDS[5:]
    if not all(isinstance(values[f], str) for f in texts) or not all(isinstance(values[f], bool) for f in flags):
        return None
    if not isinstance(values["decimals"], int) or not 0 <= values["decimals"] <= 6:
        return None
    return Currency(**values)

