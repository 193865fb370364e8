"""Which invoices exist: a fixed head holding the review-rule cases, then a seeded body of ordinary ones."""

from __future__ import annotations

from datetime import date, timedelta

from cwsim.seed import names
from cwsim.seed.context import at, money
from cwsim.seed.invoices import (
    APPROVED,
    CLOSED,
    HARDWARE,
    OPEN,
    PAID,
    READY,
    REJECTED,
    SENT,
    VOID,
    InvoiceSeeder,
)
from cwsim.seed.work import active_additions
from cwsim.serialize import ref

MONTHS_BACK_LIMIT = 30
PHASES = ("Phase 1: Discovery and design", "Phase 2: Implementation")
BODY_TYPES = [
    ("Standard", 50),
    ("Agreement", 28),
    ("ProjectActual", 6),
    ("Progress", 3),
    ("DownPayment", 2),
    ("Miscellaneous", 6),
    ("CreditMemo", 5),
]
CATALOG_IDX = {row[0]: i for i, row in enumerate(names.CATALOG)}


def month_start(anchor: date, months_back: int) -> date:
    index = anchor.year * 12 + anchor.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def build_invoices(seeder: InvoiceSeeder, count: int) -> None:
    head = [
        _head_agreement(0),
        _head_agreement(1),
        _below_cost,
        _thin_notes,
        _stale_time,
        _positive_credit,
        _non_billable,
        _duplicate_product,
        _eur,
        _jpy,
        _credit_memo,
        _progress,
        _down_payment,
        _misc,
        _paid,
        _partial,
    ]
    for build in head[:count]:
        build(seeder)
    for _ in range(max(0, count - len(head))):
        _body_invoice(seeder)


def _company(s: InvoiceSeeder, ident: str) -> dict:
    return s.company_by_ident[ident]


def _agreement_invoice(s: InvoiceSeeder, agreement: dict, months_back: int, status: int) -> None:
    company = next(c for c in s.ctx.customers if c["id"] == agreement["company"]["id"])
    day = month_start(s.ctx.anchor, months_back)
    amount = money(
        sum(a["extPrice"] for a in active_additions(s.ctx, agreement["id"], day)),
        company["currency"]["numberOfDecimals"],
    )
    d = s.draft(
        "Agreement",
        company,
        day,
        status,
        agreement_id=agreement["id"],
        agreement_amount=amount,
        paid_fraction=_paid_fraction(status),
    )
    s.finish(d)


def _head_agreement(months_back_from_june: int):
    def build(s: InvoiceSeeder) -> None:
        agreement = s.ctx.agreements_by_company[_company(s, "AcmeDental")["id"]][0]
        # Invoice 1 is May 2025, invoice 2 June 2025: agreement 31 gained seats on 15 May.
        _agreement_invoice(
            s, agreement, 1 - months_back_from_june, PAID if months_back_from_june == 0 else OPEN
        )
        s.agreement_months[agreement["id"]] = 2

    return build


def _tickets(s: InvoiceSeeder, company: dict, n: int) -> list[dict]:
    return s.ctx.tickets_by_company[company["id"]][:n]


def _below_cost(s: InvoiceSeeder) -> None:
    company = _company(s, "CedarAccount")
    ticket = _tickets(s, company, 1)[0]
    d = s.draft("Standard", company, s.ctx.anchor - timedelta(days=4), OPEN, ticket_id=ticket["id"])
    s.ticket_time(d, [ticket], (2, 2))
    s.add_product(d, CATALOG_IDX["DELL-LAT5450"], 2.0, price=989.00)  # sold below the 1012.00 cost
    s.add_product(d, CATALOG_IDX["TONER-HP"], 3.0)  # 8.5 % margin
    s.add_product(d, CATALOG_IDX["CAT6-25"], 10.0)
    s.finish(d)


def _thin_notes(s: InvoiceSeeder) -> None:
    company = _company(s, "BlueRidgeLaw")
    ticket = _tickets(s, company, 1)[0]
    d = s.draft("Standard", company, s.ctx.anchor - timedelta(days=6), READY, ticket_id=ticket["id"])
    s.add_time(d, at(d.day - timedelta(days=3), 9), 1.0, "")
    s.add_time(d, at(d.day - timedelta(days=2), 13), 0.5, names.THIN_NOTES[0])
    s.add_time(d, at(d.day - timedelta(days=1), 10), 1.5, names.TIME_NOTES[2])
    s.finish(d)


def _stale_time(s: InvoiceSeeder) -> None:
    company = _company(s, "HarborMfg")
    ticket = _tickets(s, company, 1)[0]
    d = s.draft("Standard", company, s.ctx.anchor - timedelta(days=3), OPEN, ticket_id=ticket["id"])
    s.add_time(d, at(d.day - timedelta(days=95), 10), 2.0, names.TIME_NOTES[9])  # worked 95 days earlier
    s.add_time(d, at(d.day - timedelta(days=5), 8), 14.0, names.TIME_NOTES[16], type_id=2)  # hours outlier
    s.finish(d)


def _positive_credit(s: InvoiceSeeder) -> None:
    company = _company(s, "GrantArch")
    d = s.draft("CreditMemo", company, s.ctx.anchor - timedelta(days=8), OPEN)
    # Entered with a positive quantity by mistake: the credit memo now charges the client.
    s.add_product(d, CATALOG_IDX["DELL-P2425H"], 1.0, description="Credit: returned monitor")
    s.finish(d)


def _non_billable(s: InvoiceSeeder) -> None:
    company = _company(s, "IronwoodCU")
    ticket = _tickets(s, company, 1)[0]
    d = s.draft("Standard", company, s.ctx.anchor - timedelta(days=5), OPEN, ticket_id=ticket["id"])
    # Billed at 1.5 times the role's rate, with an internal note left in: the rate and keyword cases.
    s.add_time(d, at(d.day - timedelta(days=4), 9), 2.0, f"{names.TIME_NOTES[4]} TODO: confirm rate with Dave",
               rate_factor=1.5)
    s.add_time(d, at(d.day - timedelta(days=3), 9), 1.0, names.TIME_NOTES[5], billable="NoCharge")
    s.add_time(d, at(d.day - timedelta(days=2), 9), 0.5, names.TIME_NOTES[6], billable="DoNotBill")
    s.finish(d)


def _duplicate_product(s: InvoiceSeeder) -> None:
    company = _company(s, "JuniperMed")
    d = s.draft("Standard", company, s.ctx.anchor - timedelta(days=7), OPEN)
    s.add_product(d, CATALOG_IDX["MR36"], 2.0)
    s.add_product(d, CATALOG_IDX["MR36"], 2.0)  # same item, description, quantity and price twice
    s.add_product(d, CATALOG_IDX["LABOR-INST"], 1.0)
    s.finish(d)


def _eur(s: InvoiceSeeder) -> None:
    company = _company(s, "WerkstattBer")
    ticket = _tickets(s, company, 1)[0]
    d = s.draft("Standard", company, s.ctx.anchor - timedelta(days=9), APPROVED, ticket_id=ticket["id"])
    s.ticket_time(d, [ticket], (3, 3))
    s.add_product(d, CATALOG_IDX["FG-60F"], 1.0)
    s.add_expense(d, 4, 780.0, "Airfare Austin-Berlin for on-site firewall cut-over", markup=1.0)
    s.finish(d)


def _jpy(s: InvoiceSeeder) -> None:
    company = _company(s, "SakuraTrade")
    ticket = _tickets(s, company, 1)[0]
    d = s.draft("Standard", company, s.ctx.anchor - timedelta(days=10), OPEN, ticket_id=ticket["id"])
    s.ticket_time(d, [ticket], (3, 3))
    s.add_product(d, CATALOG_IDX["DELL-P2425H"], 3.0)
    s.finish(d)


def _credit_memo(s: InvoiceSeeder) -> None:
    company = _company(s, "DeltaLogist")
    d = s.draft("CreditMemo", company, s.ctx.anchor - timedelta(days=12), SENT)
    s.add_product(d, CATALOG_IDX["DOCK-WD22"], -2.0, description="Credit: docks returned unopened")
    s.finish(d)


def _fixed_fee_project(s: InvoiceSeeder) -> dict:
    return next(p for p in s.ctx.data["projects"].records.values() if p["billingMethod"] == "FixedFee")


def _progress(s: InvoiceSeeder) -> None:
    project = _fixed_fee_project(s)
    company = next(c for c in s.ctx.customers if c["id"] == project["company"]["id"])
    d = s.draft("Progress", company, s.ctx.anchor - timedelta(days=2), OPEN, project_id=project["id"])
    for k in range(4):
        s.add_time(
            d,
            at(d.day - timedelta(days=3 + k), 9),
            4.0,
            names.TIME_NOTES[15 + k % 2],
            type_id=4,
            member=s.ctx.members[5],
        )
    milestone = money(project["billingAmount"] * 0.5, d.dec)
    service = sum(t.extended for t in d.times)
    d.adjustment = money(milestone - service, d.dec)
    d.adjustment_reason = "Fixed fee: 50% milestone"
    d.downpayment_applied = project["downpayment"]
    s.finish(d)


def _down_payment(s: InvoiceSeeder) -> None:
    project = _fixed_fee_project(s)
    company = next(c for c in s.ctx.customers if c["id"] == project["company"]["id"])
    d = s.draft(
        "DownPayment",
        company,
        s.ctx.anchor - timedelta(days=60),
        PAID,
        project_id=project["id"],
        paid_fraction=1.0,
    )
    d.adjustment = project["downpayment"]
    d.remaining_downpayment = project["downpayment"]
    d.adjustment_reason = "Project down payment (25%)"
    s.finish(d)


def _misc(s: InvoiceSeeder) -> None:
    company = _company(s, "KestrelAero")
    d = s.draft("Miscellaneous", company, s.ctx.anchor - timedelta(days=11), OPEN, taxed=False)
    s.add_product(d, CATALOG_IDX["SSL-OV"], 1.0)
    s.add_product(d, CATALOG_IDX["DOMAIN-COM"], 3.0)
    s.add_product(d, CATALOG_IDX["LABOR-INST"], 1.0, price=0.0)  # billable line with zero amount
    s.finish(d)


def _paid(s: InvoiceSeeder) -> None:
    company = _company(s, "MeridianIns")
    tickets = _tickets(s, company, 2)
    d = s.draft("Standard", company, s.ctx.anchor - timedelta(days=40), PAID, paid_fraction=1.0)
    s.ticket_time(d, tickets, (2, 3))
    s.finish(d)


def _partial(s: InvoiceSeeder) -> None:
    company = _company(s, "NorthStarEng")
    tickets = _tickets(s, company, 2)
    d = s.draft("Standard", company, s.ctx.anchor - timedelta(days=35), SENT, paid_fraction=0.4)
    s.ticket_time(d, tickets, (2, 3))
    s.add_product(d, CATALOG_IDX["UPS-1500"], 1.0)
    s.finish(d)


def _status(s: InvoiceSeeder) -> tuple[int, float | None]:
    roll = s.rng.random()
    if roll < 0.55:
        return s.rng.choice((OPEN, OPEN, OPEN, READY, READY, APPROVED)), None
    if roll < 0.58:
        return REJECTED, None
    if roll < 0.70:
        return SENT, (0.4 if s.rng.random() < 0.4 else None)
    if roll < 0.90:
        return PAID, 1.0
    if roll < 0.98:
        return CLOSED, 1.0
    return VOID, None


def _paid_fraction(status: int) -> float | None:
    return 1.0 if status in (PAID, CLOSED) else None


def _body_invoice(s: InvoiceSeeder) -> None:
    rng, ctx = s.rng, s.ctx
    kind = rng.choices([k for k, _ in BODY_TYPES], [w for _, w in BODY_TYPES])[0]
    status, fraction = _status(s)
    day = ctx.anchor - timedelta(days=rng.randint(0, 330))
    if kind == "Agreement":
        agreements = list(ctx.data["agreements"].records.values())
        agreement = agreements[len(s.invoices.records) % len(agreements)]
        months = s.agreement_months.get(agreement["id"], 0)
        if months < MONTHS_BACK_LIMIT:
            s.agreement_months[agreement["id"]] = months + 1
            _agreement_invoice(s, agreement, months, status if status != VOID else OPEN)
            return
        kind = "Standard"
    if kind in ("ProjectActual", "Progress", "DownPayment"):
        wanted = "ActualRates" if kind == "ProjectActual" else "FixedFee"
        project = rng.choice(
            [p for p in ctx.data["projects"].records.values() if p["billingMethod"] == wanted]
        )
        company = next(c for c in ctx.customers if c["id"] == project["company"]["id"])
        invoice_type = "Standard" if kind == "ProjectActual" else kind
        d = s.draft(invoice_type, company, day, status, project_id=project["id"], paid_fraction=fraction)
        if kind == "ProjectActual" and d.id % 3 == 0:
            # Billed by phase (no random draw, so the rest of the data set stays as it was).
            phase_id = project["id"] * 10 + 1 + d.id % 2
            s.apply_to(d, "ProjectPhase", ref("phase", phase_id, href_path=f"/project/projects/{project['id']}"
                                              f"/phases/{phase_id}", name=PHASES[d.id % 2]))
        if kind == "DownPayment":
            d.adjustment = money(project["downpayment"], d.dec)
            d.remaining_downpayment = d.adjustment
            d.adjustment_reason = "Project down payment"
        else:
            project_tickets = [
                t for t in ctx.tickets_by_company[company["id"]] if t["recordType"] == "ProjectTicket"
            ]
            for _ in range(rng.randint(2, 6)):
                s.add_time(
                    d,
                    at(day - timedelta(days=rng.randint(1, 25)), rng.randint(8, 15)),
                    rng.choice((1.0, 2.0, 3.0, 4.0, 6.0)),
                    rng.choice(names.TIME_NOTES[15:]),
                    type_id=4,
                    ticket_id=project_tickets[0]["id"] if project_tickets else None,
                )
            if kind == "Progress":
                milestone = money(project["billingAmount"] * 0.25, d.dec)
                d.adjustment = money(milestone - sum(t.extended for t in d.times), d.dec)
                d.adjustment_reason = "Fixed fee: 25% milestone"
            elif rng.random() < 0.5:
                s.add_product(d, rng.choice(HARDWARE), float(rng.randint(1, 4)))
        s.finish(d)
        return
    company = rng.choice(ctx.customers)
    if kind == "Miscellaneous":
        d = s.draft(kind, company, day, status, paid_fraction=fraction)
        for _ in range(rng.randint(1, 3)):
            s.add_product(d, rng.choice(HARDWARE + [16, 17]), float(rng.randint(1, 5)))
    elif kind == "CreditMemo":
        d = s.draft(kind, company, day, status if status not in (PAID, CLOSED) else SENT)
        idx = rng.choice(HARDWARE)
        s.add_product(d, idx, -float(rng.randint(1, 2)), description=f"Credit: {names.CATALOG[idx][1]}")
    else:
        tickets = s.ctx.tickets_by_company[company["id"]]
        chosen = rng.sample(tickets, min(len(tickets), rng.randint(1, 3)))
        d = s.draft(
            "Standard",
            company,
            day,
            status,
            ticket_id=chosen[0]["id"] if len(chosen) == 1 else None,
            paid_fraction=fraction,
        )
        s.ticket_time(d, chosen)
        agreements = ctx.agreements_by_company.get(company["id"])
        if d.ticket_id is not None and d.id % 7 == 5:
            # A fixed-fee ticket: the time is billed at the agreed fee (an adjustment rounds it to the fee).
            ctx.data["tickets"].records[d.ticket_id]["billingMethod"] = "FixedFee"
            service = sum(t.extended for t in d.times)
            d.adjustment = money((int(service // 100) + 1) * 100 - service, d.dec)
            d.adjustment_reason = "Fixed fee"
        elif agreements and d.id % 5 == 2:
            s.cover_time(d, agreements[0]["id"])  # agreement time: covered / overage
        if rng.random() < 0.35:
            for _ in range(rng.randint(1, 3)):
                s.add_product(d, rng.choice(HARDWARE), float(rng.randint(1, 5)))
            if d.id % 4 == 3 and d.ticket_id is None:
                order_id = 800 + d.id
                s.apply_to(d, "SalesOrder", ref("salesOrder", order_id, identifier=f"SO-{order_id}"))
        if rng.random() < 0.15:
            miles = rng.randint(12, 90)
            s.add_expense(d, 0, miles * 0.67, f"Mileage to {company['city']} site, {miles} mi")
    s.finish(d)
