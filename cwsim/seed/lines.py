"""Invoice children as compact rows (products, time, expenses, payments, routings) and their builders.

Rows hold ids and numbers only; builders turn them into ConnectWise-shaped dicts using the seed's shared
reference objects, so 10,000+ invoices stay cheap in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cwsim.seed import names
from cwsim.seed.context import SeedContext
from cwsim.seed.work import catalog_ref
from cwsim.serialize import audit_info, iso, ref


@dataclass(slots=True)
class ProductRow:
    id: int
    invoice_id: int
    company_id: int
    catalog_idx: int
    quantity: float
    price: float
    cost: float
    ext_price: float
    ext_cost: float
    billable: str
    taxable: bool
    sequence: int
    day: datetime
    ticket_id: int | None = None
    project_id: int | None = None
    agreement_id: int | None = None
    description: str | None = None


@dataclass(slots=True)
class TimeRow:
    id: int
    invoice_id: int
    company_id: int
    member_id: int
    role_id: int
    type_id: int
    start: datetime
    hours: float
    rate: float
    extended: float
    billable: str
    notes: str
    ticket_id: int | None = None
    project_id: int | None = None
    agreement_id: int | None = None
    covered: float = 0.0  # hours the agreement covers; only the rest is charged


@dataclass(slots=True)
class ExpenseRow:
    id: int
    invoice_id: int
    company_id: int
    member_id: int
    type_idx: int
    amount: float
    bill_amount: float
    invoice_amount: float
    billable: str
    day: datetime
    notes: str
    ticket_id: int | None = None
    project_id: int | None = None


@dataclass(slots=True)
class PaymentRow:
    id: int
    invoice_id: int
    amount: float
    balance_after: float
    day: datetime
    credit_invoice_id: int | None = None  # a credit memo applied, not money received


@dataclass(slots=True)
class RoutingRow:
    id: int
    invoice_id: int
    sequence: int
    member_id: int
    reviewed: bool
    day: datetime


def make_builders(ctx: SeedContext, invoice_refs: dict[int, dict]) -> dict[str, Callable]:
    """Closures that build API dicts from rows, sharing the seed's reference objects."""
    companies = {c["id"]: c for c in ctx.customers}
    members = {m["id"]: m for m in ctx.members}

    def charge(row) -> dict:
        out: dict = {}
        if row.ticket_id:
            ticket = ctx.data["tickets"].records[row.ticket_id]
            out["ticket"] = ctx.ref("ticket", row.ticket_id)
            out["chargeToType"] = ticket["recordType"]
            out["chargeToId"] = row.ticket_id
        else:
            out["chargeToType"] = "Company"
            out["chargeToId"] = row.company_id
        if row.project_id:
            out["project"] = ctx.ref("project", row.project_id)
        return out

    def product(row: ProductRow) -> dict:
        company = companies[row.company_id]
        ident, desc, _cost, _price, pclass, _tax, uom = names.CATALOG[row.catalog_idx]
        stamp = iso(row.day)
        out = {
            "id": row.id,
            "catalogItem": catalog_ref(ctx, row.catalog_idx),
            "description": row.description or desc,
            "sequenceNumber": float(row.sequence),
            "quantity": row.quantity,
            "unitOfMeasure": ref("unitOfMeasure", 1, name=uom),
            "price": row.price,
            "cost": row.cost,
            "extPrice": row.ext_price,
            "extCost": row.ext_cost,
            "discount": 0.0,
            "margin": round(row.ext_price - row.ext_cost, 2),
            "agreementAmount": 0.0,
            "priceMethod": "PricePerUnit",
            "billableOption": row.billable,
            "locationId": 1,
            "location": ctx.ref("location", 1),
            "businessUnitId": 1,
            "businessUnit": ref("department", 1, name="Managed Services"),
            "vendor": ctx.ref("company", 201 + row.catalog_idx % 4),
            "vendorSku": ident,
            "taxableFlag": row.taxable,
            "dropshipFlag": False,
            "specialOrderFlag": False,
            "phaseProductFlag": False,
            "cancelledFlag": False,
            "quantityCancelled": 0.0,
            "customerDescription": row.description or desc,
            "productSuppliedFlag": False,
            "invoice": invoice_refs[row.invoice_id],
            "calculatedPriceFlag": False,
            "calculatedCostFlag": False,
            "purchaseDate": stamp,
            "listPrice": row.price,
            "company": ctx.ref("company", row.company_id),
            "productClass": pclass,
            "needToPurchaseFlag": False,
            "minimumStockFlag": False,
            "uom": uom,
            "taxCode": company["taxCode"],
            "_info": audit_info(stamp, "lmartin", stamp),
        }
        if row.ticket_id:
            out["ticket"] = ctx.ref("ticket", row.ticket_id)
        if row.project_id:
            out["project"] = ctx.ref("project", row.project_id)
        if row.agreement_id:
            out["agreement"] = ctx.ref("agreement", row.agreement_id)
        return out

    def time_entry(row: TimeRow) -> dict:
        member = members[row.member_id]
        end = row.start + timedelta(hours=row.hours)
        billed = row.hours if row.billable == "Billable" else 0.0
        out = {
            "id": row.id,
            "company": ctx.ref("company", row.company_id),
            "companyType": "Client",
            **charge(row),
            "member": member["_ref"],
            "locationId": 1,
            "businessUnitId": 1,
            "location": ref("location", 1, name="Main Office"),
            "department": ref("department", 1, name="Managed Services"),
            "workType": ctx.ref("workType", row.type_id),
            "workRole": ctx.ref("workRole", row.role_id),
            "timeStart": iso(row.start),
            "timeEnd": iso(end),
            "hoursDeduct": 0.0,
            "actualHours": row.hours,
            "billableOption": row.billable,
            "notes": row.notes,
            "addToDetailDescriptionFlag": True,
            "addToInternalAnalysisFlag": False,
            "addToResolutionFlag": False,
            "emailResourceFlag": False,
            "emailContactFlag": False,
            "emailCcFlag": False,
            "hoursBilled": billed,
            "invoiceHours": billed,
            "hourlyCost": f"{member['hourlyCost']:.2f}",
            "enteredBy": member["identifier"],
            "dateEntered": iso(end),
            "invoice": invoice_refs[row.invoice_id],
            "hourlyRate": row.rate,
            "agreementHours": 0.0,
            "agreementAmount": 0.0,
            "adjustment": 0.0,
            "invoiceReady": 1,
            "status": "Billed",
            "invoiceFlag": True,
            "extendedInvoiceAmount": row.extended,
            "timeSheet": ref(
                "timeSheet",
                9000 + row.member_id * 100 + row.start.isocalendar()[1],
                name=f"{row.start.year}-W{row.start.isocalendar()[1]:02d}",
            ),
            "taxCode": companies[row.company_id]["taxCode"],
            "_info": audit_info(iso(end + timedelta(hours=1)), member["identifier"], iso(end)),
        }
        if row.ticket_id:
            ticket = ctx.data["tickets"].records[row.ticket_id]
            out["ticketBoard"] = ticket["board"]["name"]
            out["ticketStatus"] = ticket["status"]["name"]
            out["ticketType"] = ticket["type"]["name"]
        if row.agreement_id:
            out["agreement"] = ctx.ref("agreement", row.agreement_id)
            out["agreementType"] = "Managed Services"
        if row.covered:
            # Agreement time: covered hours at the agreement's cost, the overage billed at the overage rate.
            dec = companies[row.company_id]["currency"]["numberOfDecimals"]
            out["agreementHours"] = row.covered
            out["agreementAmount"] = round(row.covered * row.rate, dec)
            out["overageRate"] = row.rate
        return out

    def expense(row: ExpenseRow) -> dict:
        member = members[row.member_id]
        name, type_id = names.EXPENSE_TYPES[row.type_idx]
        stamp = iso(row.day)
        return {
            "id": row.id,
            "expenseReport": ref(
                "expenseReport", 7000 + row.member_id, name=f"{member['identifier']} expenses"
            ),
            "company": ctx.ref("company", row.company_id),
            **charge(row),
            "type": ref("expenseType", type_id, name=name),
            "member": member["_ref"],
            "paymentMethod": ref("paymentMethod", 1, name="Company Credit Card"),
            "classification": ref("classification", 1, name="Reimbursable"),
            "amount": row.amount,
            "billableOption": row.billable,
            "date": stamp,
            "locationId": 1,
            "businessUnitId": 1,
            "notes": row.notes,
            "invoiceAmount": row.invoice_amount,
            "invoice": invoice_refs[row.invoice_id],
            "currency": companies[row.company_id]["currency"],
            "status": "Billed",
            "billAmount": row.bill_amount,
            "agreementAmount": 0.0,
            "_info": audit_info(stamp, member["identifier"], stamp),
        }

    def payment(row: PaymentRow) -> dict:
        invoice = ctx.data["invoices"].records.get(row.invoice_id, {})
        stamp = iso(row.day)
        out = {
            "id": row.id,
            "type": "Credit" if row.credit_invoice_id else "Payment",
            "source": "Default",
            "invoice": invoice_refs[row.invoice_id],
            "amount": row.amount,
            "balance": row.balance_after,
            "invoiceBalance": row.balance_after,
            "invoiceTotal": invoice.get("total", 0.0),
            "paymentDate": stamp,
            "appliedBy": "lmartin",
            "paymentSyncStatus": "Applied",
            "_info": audit_info(stamp, "lmartin", stamp),
        }
        if row.credit_invoice_id:
            out["credit"] = invoice_refs[row.credit_invoice_id]
        return out

    def routing(row: RoutingRow) -> dict:
        out = {
            "id": row.id,
            "invoice": invoice_refs[row.invoice_id],
            "sequenceNumber": row.sequence,
            "member": members[row.member_id]["_ref"],
            "reviewedFlag": row.reviewed,
            "_info": audit_info(iso(row.day), "lmartin"),
        }
        if row.reviewed:
            out["dateReviewedUTC"] = iso(row.day)
        return out

    return {
        "products": product,
        "timeEntries": time_entry,
        "expenseEntries": expense,
        "payments": payment,
        "routings": routing,
    }
