"""Invoices of every type with their line rows, tax, payments and routings, amounts adding up like CW's.

The header amounts come from the lines by ``cwsim.totals`` (the formula a PATCH recomputes them with too).

The fixed head of the series (ids 1..16) holds the review-rule cases; ``CASES`` names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from cwsim import totals
from cwsim.seed import names
from cwsim.seed.context import SeedContext, at, money
from cwsim.seed.lines import ExpenseRow, PaymentRow, ProductRow, RoutingRow, TimeRow, make_builders
from cwsim.seed.reference import BILLING_TERMS
from cwsim.seed.work import price_in
from cwsim.serialize import audit_info, iso, ref
from cwsim.store import EagerTable, LazyTable

CASES: dict[str, list[int]] = {
    "agreement_amount_changed": [1, 2],
    "below_cost_product": [3],
    "low_margin_product": [3],
    "time_empty_notes": [4],
    "time_thin_notes": [4],
    "stale_time": [5],
    "credit_memo_positive_total": [6],
    "non_billable_time": [7],
    "duplicate_product_line": [8],
    "eur_currency": [9],
    "jpy_currency": [10],
    "credit_memo": [11],
    "fixed_fee_progress": [12],
    "down_payment": [13],
    "miscellaneous": [14],
    "paid": [15],
    "partially_paid": [16],
    "hours_outlier": [5],
    "large_expense": [9],
    "zero_amount_billable_product": [14],
    "no_tax_code": [14],
    "keyword_on_invoice": [7],
    "rate_differs_from_usual": [7],
}
OPEN, READY, APPROVED, REJECTED, SENT, PAID, CLOSED, VOID = 1, 2, 3, 4, 5, 6, 7, 8
CREDIT_MEMO = 11  # the head's credit memo (docks returned), applied as a credit to some later invoices
HARDWARE = list(range(6, 20))


@dataclass
class Draft:
    id: int
    kind: str
    company: dict
    day: date
    status: int
    apply_to: tuple[str, int | None] = ("All", None)
    products: list[ProductRow] = field(default_factory=list)
    times: list[TimeRow] = field(default_factory=list)
    expenses: list[ExpenseRow] = field(default_factory=list)
    agreement_id: int | None = None
    project_id: int | None = None
    ticket_id: int | None = None
    agreement_amount: float = 0.0
    adjustment: float = 0.0
    adjustment_reason: str = ""
    downpayment_applied: float = 0.0
    remaining_downpayment: float = 0.0
    paid_fraction: float | None = None
    taxed: bool = True
    phase: dict | None = None  # a ProjectPhaseReference: the invoice bills one phase of a project
    sales_order: dict | None = None  # a SalesOrderReference: the invoice bills a sales order

    @property
    def dec(self) -> int:
        return self.company["currency"]["numberOfDecimals"]


class InvoiceSeeder:
    def __init__(self, ctx: SeedContext):
        self.ctx = ctx
        self.rng = ctx.rng
        self.invoices = EagerTable()
        self.invoice_refs: dict[int, dict] = {}
        builders = make_builders(ctx, self.invoice_refs)

        def by_invoice(row):
            return row.invoice_id

        self.tables = {
            "products": LazyTable(builders["products"], by_invoice),
            "timeEntries": LazyTable(builders["timeEntries"], by_invoice),
            "expenseEntries": LazyTable(builders["expenseEntries"], by_invoice),
            "payments": LazyTable(builders["payments"], by_invoice, parent_of=by_invoice),
            "routings": LazyTable(builders["routings"], by_invoice, parent_of=by_invoice),
        }
        self.next_ids = {"products": 20001, "timeEntries": 100001, "expenseEntries": 3001}
        self.company_by_ident = {c["identifier"]: c for c in ctx.customers}
        self.active_members = [m for m in ctx.members if not m["inactiveFlag"]]
        self.agreement_months: dict[int, int] = {}

    # --- rows -------------------------------------------------------------------------------------
    def _next(self, table: str) -> int:
        value = self.next_ids[table]
        self.next_ids[table] += 1
        return value

    def add_time(
        self,
        d: Draft,
        start: datetime,
        hours: float,
        notes: str,
        billable: str = "Billable",
        member: dict | None = None,
        type_id: int = 1,
        ticket_id: int | None = None,
        project_id: int | None = None,
        rate_factor: float = 1.0,
    ) -> None:
        member = member or self.rng.choice(self.active_members[:11])
        role = member["_role"]
        rate = price_in(self.ctx, d.company, role["rate"] or 95.0)
        if rate_factor != 1.0:  # a rate off the role's usual one (the "rate differs from usual" case)
            rate = money(rate * rate_factor, d.dec)
        extended = money(hours * rate, d.dec) if billable == "Billable" else 0.0
        tid = ticket_id if ticket_id is not None else d.ticket_id
        row = TimeRow(
            self._next("timeEntries"),
            d.id,
            d.company["id"],
            member["id"],
            role["id"],
            type_id,
            start,
            hours,
            rate,
            extended,
            billable,
            notes,
            tid,
            project_id or d.project_id,
            d.agreement_id,
        )
        d.times.append(row)

    def add_product(
        self,
        d: Draft,
        idx: int,
        quantity: float,
        price: float | None = None,
        cost: float | None = None,
        billable: str = "Billable",
        description: str | None = None,
    ) -> None:
        _i, _desc, usd_cost, usd_price, _cls, taxable, _uom = names.CATALOG[idx]
        price = price_in(self.ctx, d.company, usd_price) if price is None else price
        cost = price_in(self.ctx, d.company, usd_cost) if cost is None else cost
        row = ProductRow(
            self._next("products"),
            d.id,
            d.company["id"],
            idx,
            quantity,
            price,
            cost,
            money(quantity * price, d.dec),
            money(quantity * cost, d.dec),
            billable,
            taxable,
            len(d.products) + 1,
            at(d.day - timedelta(days=3), 10),
            d.ticket_id,
            d.project_id,
            d.agreement_id,
            description,
        )
        d.products.append(row)

    def add_expense(
        self,
        d: Draft,
        type_idx: int,
        amount: float,
        notes: str,
        markup: float = 1.0,
        billable: str = "Billable",
    ) -> None:
        amount = money(amount, d.dec)
        bill = money(amount * markup, d.dec)
        member = self.rng.choice(self.active_members[:11])
        row = ExpenseRow(
            self._next("expenseEntries"),
            d.id,
            d.company["id"],
            member["id"],
            type_idx,
            amount,
            bill,
            bill if billable == "Billable" else 0.0,
            billable,
            at(d.day - timedelta(days=5), 12),
            notes,
            d.ticket_id,
            d.project_id,
        )
        d.expenses.append(row)

    # --- invoice lifecycle ------------------------------------------------------------------------
    def draft(self, kind: str, company: dict, day: date, status: int, **extra) -> Draft:
        iid = len(self.invoices.records) + 1
        d = Draft(iid, kind, company, day, status, **extra)
        if d.agreement_id:
            d.apply_to = ("Agreement", d.agreement_id)
        elif d.project_id:
            d.apply_to = ("Project", d.project_id)
        elif d.ticket_id:
            d.apply_to = ("Ticket", d.ticket_id)
        self.invoice_refs[iid] = ref(
            "invoice",
            iid,
            identifier=f"INV-{10000 + iid}",
            billingType=kind,
            applyToType=d.apply_to[0],
            invoiceDate=iso(day),
            chargeFirmFlag=False,
        )
        # Reserve the id now so nested drafts cannot take it.
        self.invoices.records[iid] = {}
        return d

    def ticket_time(self, d: Draft, tickets: list[dict], entries: tuple[int, int] = (1, 4)) -> None:
        for ticket in tickets:
            for _ in range(self.rng.randint(*entries)):
                start = at(
                    d.day - timedelta(days=self.rng.randint(1, 28)),
                    self.rng.randint(8, 16),
                    self.rng.choice((0, 15, 30, 45)),
                )
                roll = self.rng.random()
                billable = "Billable" if roll < 0.93 else "NoCharge" if roll < 0.97 else "DoNotBill"
                self.add_time(
                    d,
                    start,
                    self.rng.choice((0.25, 0.5, 0.75, 1.0, 1.0, 1.5, 2.0, 3.0)),
                    self.rng.choice(names.TIME_NOTES),
                    billable,
                    type_id=self.rng.choice((1, 1, 1, 2, 3)),
                    ticket_id=ticket["id"],
                )

    def cover_time(self, d: Draft, agreement_id: int, hours: float = 1.0) -> None:
        """Charge the billable time of ``d`` against an agreement: up to ``hours`` per entry are covered."""
        for row in d.times:
            if row.billable != "Billable":
                continue
            row.agreement_id = agreement_id
            row.covered = min(row.hours, hours)
            row.extended = money((row.hours - row.covered) * row.rate, d.dec)

    def apply_to(self, d: Draft, kind: str, target: dict) -> None:
        """Re-point ``d`` at a project phase or a sales order (before ``finish``)."""
        if kind == "ProjectPhase":
            d.phase = target
        else:
            d.sales_order = target
        d.apply_to = (kind, target["id"])
        self.invoice_refs[d.id]["applyToType"] = kind

    def finish(self, d: Draft) -> None:
        ctx, dec = self.ctx, d.dec
        tax_code = ctx.tax_codes[d.company["taxCode"]["id"]] if d.taxed else None
        amounts = totals.header_amounts(
            dec,
            tax_code,
            (t.extended for t in d.times),
            ((p.ext_price, p.billable == "Billable", p.taxable) for p in d.products),
            ((e.invoice_amount, e.billable == "Billable") for e in d.expenses),
            d.agreement_amount,
            d.adjustment,
            d.downpayment_applied,
        )
        service, product, expense = amounts.service, amounts.product, amounts.expense
        subtotal, sales_tax, total = amounts.subtotal, amounts.sales_tax, amounts.total
        paid = 0.0
        if d.paid_fraction is not None and total > 0:
            paid = money(total * d.paid_fraction, dec)
        # Some open USD invoices have part of credit memo INV-10011 applied to them (CW: InvoicePayment with
        # a `credit` reference; the invoice's `credits`). Chosen by id, so no random draw changes.
        credit = 0.0
        if (d.kind == "Standard" and d.id % 11 == 6 and d.paid_fraction is None and total > 0
                and d.company["currency"]["currencyCode"] == "USD" and CREDIT_MEMO in self.invoice_refs):
            credit = money(min(total * 0.1, 250.0), dec)
        balance = totals.balance(total, paid, credit, dec)
        self._store(d, service, product, expense, subtotal, sales_tax, total, paid, balance, tax_code, credit)

    def _store(
        self, d, service, product, expense, subtotal, sales_tax, total, paid, balance, tax_code, credit=0.0
    ) -> None:
        ctx, company = self.ctx, d.company
        cid = company["id"]
        terms_id = company["billingTerms"]["id"]
        due = d.day + timedelta(days=BILLING_TERMS[terms_id][1])
        closed = d.status in (PAID, CLOSED, VOID)
        contact = ctx.contacts_by_company[cid][0]
        updated = at(min(d.day + timedelta(days=2 if not closed else 30), ctx.anchor), 14, d.id % 60)
        record = {
            "id": d.id,
            "invoiceNumber": f"INV-{10000 + d.id}",
            "type": d.kind,
            "status": ctx.ref("status", d.status),
            "company": ctx.ref("company", cid),
            "billToCompany": ctx.ref("company", cid),
            "shipToCompany": ctx.ref("company", cid),
            "accountNumber": company["accountNumber"],
            "applyToType": d.apply_to[0],
            "applyToId": d.apply_to[1],
            "attention": contact["name"],
            "billingSite": company["billingSite"],
            "billingSiteAddressLine1": company["addressLine1"],
            "billingSiteCity": company["city"],
            "billingSiteState": company["state"],
            "billingSiteZip": company["zip"],
            "billingSiteCountry": company["country"]["name"],
            "shippingSite": company["site"],
            "shippingSiteAddressLine1": company["addressLine1"],
            "shippingSiteCity": company["city"],
            "shippingSiteState": company["state"],
            "shippingSiteZip": company["zip"],
            "shippingSiteCountry": company["country"]["name"],
            "billingTerms": company["billingTerms"],
            "customerPO": f"PO-{4400 + d.id * 7}" if d.id % 4 == 0 else "",
            "reference": "",
            "templateSetupId": 2 if d.kind == "Agreement" else 1,
            "emailTemplateId": 1,
            "addToBatchEmailList": d.status == SENT,
            "date": iso(d.day),
            "restrictDownpaymentFlag": False,
            "locationId": 1,
            "location": ctx.ref("location", 1),
            "departmentId": 2 if d.project_id else 1,
            "department": ref(
                "department",
                2 if d.project_id else 1,
                name="Professional Services" if d.project_id else "Managed Services",
            ),
            "territoryId": 1,
            "territory": ctx.ref("location", 1),
            "topComment": "Thank you for your business.",
            "bottomComment": "",
            "taxableFlag": tax_code is not None,
            "taxCode": ctx.ref("taxCode", tax_code["id"]) if tax_code else None,
            "internalNotes": "",
            "downpaymentPreviouslyTaxedFlag": False,
            "serviceTotal": service,
            "overrideDownPaymentAmountFlag": False,
            "currency": company["currency"],
            "dueDate": iso(due),
            "expenseTotal": expense,
            "productTotal": product,
            "previousProgressApplied": 0.0,
            "serviceAdjustmentAmount": d.adjustment,
            "agreementAmount": d.agreement_amount,
            "downpaymentApplied": d.downpayment_applied,
            "subtotal": subtotal,
            "total": total,
            "remainingDownpayment": d.remaining_downpayment,
            "salesTax": sales_tax,
            "adjustmentReason": d.adjustment_reason,
            "adjustedBy": "lmartin" if d.adjustment else "",
            "closedBy": "lmartin" if closed else "",
            "payments": paid,
            "credits": credit,
            "balance": balance,
            "specialInvoiceFlag": d.kind in ("Miscellaneous", "CreditMemo", "DownPayment"),
            "billingSetupReference": ctx.ref("billingSetup", 1),
            "ticket": ctx.ref("ticket", d.ticket_id) if d.ticket_id else None,
            "project": ctx.ref("project", d.project_id) if d.project_id else None,
            "agreement": ctx.ref("agreement", d.agreement_id) if d.agreement_id else None,
            "phase": d.phase,
            "salesOrder": d.sales_order,
            "glBatch": ref("batch", 600 + d.id // 50, name=f"GL{600 + d.id // 50}") if closed else None,
            "_info": audit_info(
                iso(updated),
                "lmartin",
                iso(at(d.day, 9)),
                products_href=f"/procurement/products?conditions=invoice/id={d.id}",
                timeEntries_href=f"/time/entries?conditions=invoice/id={d.id}",
                expenseEntries_href=f"/expense/entries?conditions=invoice/id={d.id}",
                payments_href=f"/finance/invoices/{d.id}/payments",
                routings_href=f"/finance/invoices/{d.id}/routings",
            ),
        }
        self.invoices.records[d.id] = record
        for table, rows in (
            ("products", d.products),
            ("timeEntries", d.times),
            ("expenseEntries", d.expenses),
        ):
            for row in rows:
                self.tables[table].add(row.id, row)
        if paid:
            day = min(d.day + timedelta(days=12 + d.id % 20), ctx.anchor)
            self.tables["payments"].add(
                d.id * 10 + 1, PaymentRow(d.id * 10 + 1, d.id, paid, balance, at(day, 15))
            )
        if credit:
            day = min(d.day + timedelta(days=5), ctx.anchor)
            self.tables["payments"].add(
                d.id * 10 + 2, PaymentRow(d.id * 10 + 2, d.id, credit, balance, at(day, 11), CREDIT_MEMO)
            )
        self._route(d)

    def _route(self, d: Draft) -> None:
        """The invoice's routing: its account manager (or, for agreements, billing), the project manager on
        project invoices, a member who has since left on a few; none on every tenth (no routing rule matched)."""
        if d.id % 10 == 0:
            return
        reviewed = d.status not in (OPEN, READY)
        reviewer = 152 if d.kind == "Agreement" else 141
        self.tables["routings"].add(
            d.id * 10 + 1,
            RoutingRow(d.id * 10 + 1, d.id, 1, reviewer, reviewed, at(d.day + timedelta(days=1), 11)),
        )
        if d.project_id:
            self.tables["routings"].add(
                d.id * 10 + 2,
                RoutingRow(d.id * 10 + 2, d.id, 2, 146, reviewed, at(d.day + timedelta(days=1), 12)),
            )
        if d.id % 25 == 7:
            self.tables["routings"].add(
                d.id * 10 + 3,
                RoutingRow(d.id * 10 + 3, d.id, 3, 154, reviewed, at(d.day + timedelta(days=1), 13)),
            )
