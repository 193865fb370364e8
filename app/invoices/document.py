"""The plain invoice document: what an invoice says, independent of ConnectWise's JSON and of any rendering.

``service`` builds it from ConnectWise's payloads; ``html`` and ``pdf`` turn it (with a Branding) into HTML and PDF.
Every field is plain data (str, Decimal, date, tuples of frozen dataclasses), so a document can be built by
hand in tests and benchmarks. Text fields hold untrusted ConnectWise text, unescaped: renderers escape it.
Money is ``Decimal`` in the invoice currency; ``format_money`` formats it the way ConnectWise's currency says.
"""

from __future__ import annotations

import datetime as dt  # the `date` fields below would shadow the bare type
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

# The currency value is ConnectWise's own record; documents and renderers name it from here.
from app.connectwise.records.currency import USD as USD
from app.connectwise.records.currency import Currency as Currency

# ConnectWise's invoice types (Invoice.type) and the display types we show (issue 5, product-reference §2.4).
CW_TYPES = ("Standard", "Agreement", "CreditMemo", "DownPayment", "Miscellaneous", "Progress", "Consolidated")
DISPLAY_TYPES = ("Standard", "Fixed Fee", "Project", "Phase", "Sales Order", "Agreement", "Credit Memo",
                 "Down Payment", "Miscellaneous", "Progress")

# Which time-detail settings (Branding.time_detail key) a display type uses. Only four types have their own
# settings in the reference product; the rest borrow the nearest: phases are project work, progress bills are
# fixed-fee projects (CW: "Progress (fixed-fee projects only)"), everything else reads like a standard invoice.
TIME_DETAIL_TYPE = {
    "Standard": "standard", "Fixed Fee": "fixed_fee", "Project": "project", "Phase": "project",
    "Sales Order": "standard", "Agreement": "agreement", "Credit Memo": "standard", "Down Payment": "standard",
    "Miscellaneous": "standard", "Progress": "fixed_fee",
}

# Section keys, in the order ConnectWise prints them.
SECTION_ORDER = ("services", "agreement_services", "non_billable_services", "agreement", "products", "expenses",
                 "adjustments")




@dataclass(frozen=True)
class Party:
    """A company or the seller with a postal address; ``address`` is printable lines, empty ones dropped."""

    name: str
    address: tuple[str, ...] = ()
    attention: str = ""
    phone: str = ""
    tax_id: str = ""
    account_number: str = ""
    country: str = ""  # ISO 3166 alpha-2 when ConnectWise's country name is one we know ("DE"), else ""


@dataclass(frozen=True)
class Line:
    """One printed row of a section. Which fields a section shows is ``Section.columns``.

    Services: description = work role, detail = work type, quantity = hours, rate = hourly rate.
    Agreement time: covered_quantity / quantity are covered / overage hours; covered_rate / rate the same for rates.
    Products: description, detail = catalog identifier, quantity, rate = unit price.
    Expenses: date, description = expense type, detail = notes. Payments: date, description = type, detail.
    """

    description: str
    amount: Decimal | None = None
    detail: str = ""
    date: dt.date | None = None
    quantity: Decimal | None = None
    rate: Decimal | None = None
    covered_quantity: Decimal | None = None
    covered_rate: Decimal | None = None
    note: str = ""  # e.g. "No charge"
    # The ConnectWise records this row prints or summarises, as (kind, id): ("time", 100001), ("product", 20001),
    # ("expense", 3001), ("addition", 7), ("payment", 11). Empty for rows that are header figures (adjustments,
    # a total shown alone), so a review page can map a printed row back to what a reviewer edits.
    sources: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Section:
    """A block of the invoice as ConnectWise groups it; ``subtotal`` is ConnectWise's own figure where it has one."""

    key: str  # one of SECTION_ORDER, or "payments" / "credits"
    title: str
    columns: tuple[str, ...]  # Line field names to show, in order ("description", "detail", "quantity", ...)
    lines: tuple[Line, ...]
    subtotal: Decimal | None = None
    counts_in_subtotal: bool = True  # False for non-billable services (shown, not charged)


@dataclass(frozen=True)
class TaxLine:
    caption: str
    amount: Decimal
    rate: Decimal | None = None  # percent, when the level is a percentage


@dataclass(frozen=True)
class Totals:
    """ConnectWise's header figures, always: when our line sums disagree we still show these (``reconciled``)."""

    subtotal: Decimal
    tax: Decimal
    total: Decimal
    payments: Decimal
    credits: Decimal
    balance: Decimal
    reconciled: bool = True  # our sections add up to ConnectWise's figures
    mismatches: tuple[str, ...] = ()  # names of the header fields that disagreed (no amounts)


@dataclass(frozen=True)
class TimeEntry:
    """One time entry on the time-detail page."""

    id: int
    date: dt.date | None
    member: str
    work_role: str
    work_type: str
    notes: str
    billable: str  # "Billable" | "NoCharge" | "DoNotBill" | "NoDefault"
    hours: Decimal
    rate: Decimal | None
    amount: Decimal
    covered_hours: Decimal | None = None


@dataclass(frozen=True)
class TicketGroup:
    """Time entries of one ticket (or of no ticket: company, charge code, project without ticket)."""

    ticket_id: int | None
    ticket_number: str  # "#1042" or ""
    summary: str
    entries: tuple[TimeEntry, ...]
    hours: Decimal
    amount: Decimal


@dataclass(frozen=True)
class InvoiceDocument:
    id: int
    number: str
    cw_type: str
    display_type: str
    date: dt.date | None
    due_date: dt.date | None
    terms: str
    po_number: str
    reference: str
    bill_to: Party
    ship_to: Party | None
    remit_to: Party | None
    seller_business_number: str
    customer_tax_id: str
    currency: Currency
    top_comment: str
    bottom_comment: str
    sections: tuple[Section, ...]
    tax_lines: tuple[TaxLine, ...]
    totals: Totals
    time_detail: tuple[TicketGroup, ...]
    company_id: int
    company_name: str
    status: str
    title: str = "Invoice"  # the billing setup's invoiceTitle
    footer: str = ""  # the billing setup's invoiceFooter
    tax_caption: str = ""  # the tax code's caption on invoice
    applies_to: str = ""  # "Project: Network refresh", "Agreement: ..." (may be empty)
    seller_name: str = ""  # the billing setup's payableName / remitName
    extras: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def time_detail_type(self) -> str:
        """The Branding.time_detail key this invoice uses."""
        return TIME_DETAIL_TYPE.get(self.display_type, "standard")

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


def quantize(amount: Decimal, decimals: int, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round to the currency's decimals (half up unless told otherwise)."""
    return amount.quantize(Decimal(1).scaleb(-max(0, decimals)), rounding=rounding)


def format_number(value: Decimal, currency: Currency, places: int | None = None) -> str:
    """``value`` with the currency's separators (no symbol): "1,234.50", "1.234,50", "1,235"."""
    places = currency.decimals if places is None else places
    value = quantize(Decimal(value), places)
    sign = "-" if value < 0 else ""
    text = f"{abs(value):.{max(0, places)}f}"
    whole, _, frac = text.partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    out = currency.group_sep.join(groups)
    if frac:
        out += currency.decimal_sep + frac
    return sign + out


def format_money(amount: Decimal, currency: Currency) -> str:
    """``amount`` as ConnectWise would print it: "$1,234.56", "1.234,56 €", "¥1,235", "($12.00)"."""
    value = quantize(Decimal(amount), currency.decimals)
    body = format_number(abs(value), currency)
    if currency.show_symbol and currency.symbol:
        body = f"{currency.symbol}{body}" if currency.symbol_first else f"{body}\u00a0{currency.symbol}"
    if currency.show_code and currency.code:
        body = f"{body}\u00a0{currency.code}"
    if value < 0:
        return f"({body})" if currency.negative_parentheses else f"-{body}"
    return body


def format_hours(hours: Decimal, currency: Currency) -> str:
    """Hours with two decimals and the currency's decimal separator (so a German invoice reads "1,50")."""
    return format_number(hours, currency, 2)
