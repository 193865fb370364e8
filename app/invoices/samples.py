"""Synthetic invoice documents of any length and currency, for benchmarks, rendering tests and eyeballing PDFs.

They exercise what real invoices from ConnectWise do (long notes, Unicode names, every section) without a
ConnectWise; amounts add up the way reconstruction's do.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from app.invoices.document import (
    USD,
    Currency,
    InvoiceDocument,
    Line,
    Party,
    Section,
    TaxLine,
    TicketGroup,
    TimeEntry,
    Totals,
    quantize,
)

EUR = Currency("EUR", "€", 2, ",", ".", False)
JPY = Currency("JPY", "¥", 0, ".", ",", True)
CURRENCIES = {"USD": USD, "EUR": EUR, "JPY": JPY}
SCALE = {"USD": Decimal(1), "EUR": Decimal("0.92"), "JPY": Decimal(150)}
PRODUCTS = [
    ("DELL-LAT5450", "Dell Latitude 5450 laptop, 16 GB RAM, 512 GB SSD, 3-year ProSupport", "1389.00"),
    ("MR36", "Cisco Meraki MR36 access point", "449.00"),
    ("CAT6-25", "Cat6 patch cable, 25 ft", "8.50"),
    ("M365-BP", "Microsoft 365 Business Premium (monthly)", "22.00"),
    ("UPS-1500", "APC Smart-UPS 1500VA LCD RM 2U 230V with SmartConnect and network management card", "1099.00"),
    ("LABOR-INST", "Installation labour – Zażółć gęślą jaźń", "125.00"),
]
NOTES = [
    "Replaced the failed drive in the file server's RAID 5 array, monitored the rebuild and confirmed the "
    "nightly backup job completed without warnings.",
    "Reset MFA for Þórunn at Þekking ehf. and walked her through the Authenticator app.",
    "Firewall firmware upgrade; verified VPN and web filtering rules.",
    "Quick call.",
]


def sample_document(lines: int = 30, currency: str = "USD", *, time_entries: int | None = None,
                    display_type: str = "Standard", company: str = "Þekking ehf.") -> InvoiceDocument:
    """A Standard invoice with ``lines`` product lines, services, an expense, tax, a payment and time detail."""
    cur = CURRENCIES[currency]
    scale = SCALE[currency]

    def money(value: str | Decimal) -> Decimal:
        return quantize(Decimal(value) * scale, cur.decimals)

    products = []
    for n in range(lines):
        ident, desc, price = PRODUCTS[n % len(PRODUCTS)]
        qty = Decimal(1 + n % 4)
        unit = money(price)
        products.append(Line(description=desc, detail=ident, quantity=qty, rate=unit, amount=unit * qty))
    product_total = sum((x.amount or Decimal(0) for x in products), Decimal(0))
    entries_n = max(1, lines // 3) if time_entries is None else time_entries
    start = date(2025, 6, 1)
    groups = []
    service_lines: dict[tuple[str, str, Decimal], list[Decimal]] = {}
    per_ticket = 6
    for g in range(0, entries_n, per_ticket):
        entries = []
        for n in range(g, min(entries_n, g + per_ticket)):
            role, wtype, rate = (("Senior Engineer", "Remote Support", money("165.00")) if n % 2 else
                                 ("Help Desk", "Onsite Support", money("95.00")))
            hours = Decimal("0.25") * (1 + n % 8)
            amount = quantize(hours * rate, cur.decimals)
            entries.append(TimeEntry(id=100000 + n, date=start + timedelta(days=n % 28), member="Anika Patel",
                                     work_role=role, work_type=wtype, notes=NOTES[n % len(NOTES)],
                                     billable="Billable", hours=hours, rate=rate, amount=amount))
            service_lines.setdefault((role, wtype, rate), []).append(amount)
        ticket = 4000 + g // per_ticket
        groups.append(TicketGroup(ticket_id=ticket, ticket_number=f"#{ticket}",
                                  summary=f"Network refresh, site {g // per_ticket + 1} – Zażółć gęślą jaźń",
                                  entries=tuple(entries), hours=sum((e.hours for e in entries), Decimal(0)),
                                  amount=sum((e.amount for e in entries), Decimal(0))))
    hours_by = {k: sum((e.hours for grp in groups for e in grp.entries
                        if (e.work_role, e.work_type, e.rate) == k), Decimal(0)) for k in service_lines}
    services = tuple(Line(description=k[0], detail=k[1], quantity=hours_by[k], rate=k[2], amount=sum(v, Decimal(0)))
                     for k, v in sorted(service_lines.items()))
    service_total = sum((x.amount or Decimal(0) for x in services), Decimal(0))
    expense = money("53.60")
    sections: tuple[Section, ...] = (
        Section("services", "Billable services", ("description", "detail", "quantity", "rate", "amount"), services,
                service_total),
        Section("products", "Products", ("description", "detail", "quantity", "rate", "amount"), tuple(products),
                product_total),
        Section("expenses", "Expenses", ("date", "description", "detail", "amount"),
                (Line(description="Mileage", detail="Mileage to the Reykjavík site, 80 mi", date=start,
                      amount=expense),), expense),
    )
    subtotal = service_total + product_total + expense
    tax = quantize(product_total * Decimal("0.0825"), cur.decimals)
    total = subtotal + tax
    paid = quantize(total * Decimal("0.4"), cur.decimals)
    sections += (Section("payments", "Payments", ("date", "description", "detail", "amount"),
                         (Line(description="Payment", date=start + timedelta(days=20), amount=paid),), paid, False),)
    return InvoiceDocument(
        id=900000 + lines, number=f"INV-{20000 + lines}", cw_type="Standard", display_type=display_type,
        date=start + timedelta(days=30), due_date=start + timedelta(days=60), terms="Net 30 days",
        po_number="PO-4471", reference="", currency=cur,
        bill_to=Party(company, ("Borgartún 26", "105 Reykjavík", "Iceland"), attention="Þórunn Jónsdóttir",
                      tax_id="IS-5502691239", account_number="C00261"),
        ship_to=None,
        remit_to=Party("BetterSim IT Services LLC", ("500 Congress Ave", "Suite 1200", "Austin, TX 78701"),
                       phone="512-555-0100"),
        seller_business_number="EIN 82-4417730", customer_tax_id="IS-5502691239",
        top_comment="Thank you for your business. Prices in € ₹ ¥ on request.", bottom_comment="",
        sections=sections, tax_lines=(TaxLine("Sales tax", tax, Decimal("8.25")),),
        totals=Totals(subtotal=subtotal, tax=tax, total=total, payments=paid, credits=Decimal(0),
                      balance=total - paid),
        time_detail=tuple(groups), company_id=261, company_name=company, status="Open",
        title="Invoice", footer="Please remit within terms.", tax_caption="Sales tax",
        applies_to="", seller_name="BetterSim IT Services LLC",
    )
