"""Agreements (with additions), projects, and service/project tickets with their notes."""

from __future__ import annotations

from datetime import date, timedelta

from cwsim.seed import names
from cwsim.seed.context import SeedContext, at, money
from cwsim.serialize import audit_info, iso, ref
from cwsim.store import EagerTable

# Prices in the catalogue are USD; other currencies bill at a converted, currency-rounded price.
FX = {"USD": 1.0, "EUR": 0.92, "JPY": 150.0}
AGREEMENT_COMPANIES = 16


def price_in(ctx: SeedContext, company: dict, usd: float) -> float:
    code = company["currency"]["currencyCode"]
    return money(usd * FX[code], company["currency"]["numberOfDecimals"])


def catalog_ref(ctx: SeedContext, idx: int) -> dict:
    key = ("catalog", idx)
    if key not in ctx.refs.get("catalogItem", {}):
        ident, desc = names.CATALOG[idx][0], names.CATALOG[idx][1]
        ctx.put_ref("catalogItem", key, ref("catalogItem", 500 + idx, identifier=ident, name=desc))
    return ctx.ref("catalogItem", key)


def build_work(ctx: SeedContext) -> None:
    _agreements(ctx)
    _projects(ctx)
    _tickets(ctx)


def _agreements(ctx: SeedContext) -> None:
    agreements, additions = EagerTable(), EagerTable()
    rng = ctx.rng
    addition_id = 1
    catalog_index = {row[0]: i for i, row in enumerate(names.CATALOG)}
    agreement_type = ref("agreementType", 1, name="Managed Services")
    for n, company in enumerate(ctx.customers[:AGREEMENT_COMPANIES] + ctx.customers[-3:], start=1):
        aid = 30 + n
        start = date(2023, 1 + n % 12, 1)
        seats = max(5, company["numberOfEmployees"] // 2)
        rows = []
        for k, (ident, _override) in enumerate(names.AGREEMENT_ADDITIONS):
            if ident == "BKP-SRV" and n % 3 == 0:
                continue
            idx = catalog_index[ident]
            _i, desc, cost, price, _cls, taxable, uom = names.CATALOG[idx]
            qty = float(2 + n % 3) if ident == "BKP-SRV" else float(seats + rng.randint(-2, 4))
            # Additions that start mid-year make month-to-month agreement totals differ (a review rule).
            effective = start if k < 2 or n % 2 else ctx.anchor - timedelta(days=45 + 20 * (n % 4))
            rows.append(
                _addition(
                    ctx, addition_id, aid, company, idx, qty, price, cost, taxable, uom, desc, effective, k
                )
            )
            addition_id += 1
        if n == 1:
            # Agreement 31 gains seats in mid-May 2025: its May and June invoices differ.
            rows.append(
                _addition(
                    ctx,
                    addition_id,
                    aid,
                    company,
                    catalog_index["EXO-P1"],
                    6.0,
                    5.50,
                    4.00,
                    False,
                    "Each",
                    "Exchange Online Plan 1 (monthly)",
                    date(2025, 5, 15),
                    9,
                )
            )
            addition_id += 1
        for row in rows:
            additions.add(row, parent_id=aid)
        ctx.additions_by_agreement[aid] = rows
        current = sum(r["extPrice"] for r in rows if "cancelledDate" not in r)
        record = {
            "id": aid,
            "name": f"{company['identifier']} Managed Services",
            "type": agreement_type,
            "company": ctx.ref("company", company["id"]),
            "contact": ctx.contacts_by_company[company["id"]][0],
            "site": company["site"],
            "location": ctx.ref("location", 1),
            "department": ctx.ref("department", 1),
            "restrictLocationFlag": False,
            "restrictDepartmentFlag": False,
            "startDate": iso(start),
            "noEndingDateFlag": True,
            "cancelledFlag": False,
            "applicationUnits": "Amount",
            "applicationUnlimitedFlag": True,
            "oneTimeFlag": False,
            "coverAgreementTime": True,
            "coverAgreementProduct": False,
            "coverAgreementExpense": False,
            "coverSalesTax": False,
            "carryOverUnused": False,
            "allowOverruns": False,
            "expireWhenZero": False,
            "chargeToFirm": False,
            "billingCycle": ref("billingCycle", 1, name="Monthly"),
            "billOneTimeFlag": False,
            "billingTerms": company["billingTerms"],
            "invoicingCycle": "CalendarYear",
            "billToCompany": ctx.ref("company", company["id"]),
            "billAmount": current,
            "taxable": True,
            "billStartDate": iso(start),
            "taxCode": company["taxCode"],
            "prorateFlag": False,
            "invoiceDescription": "Managed IT services - monthly",
            "topComment": False,
            "bottomComment": False,
            "workRole": ctx.ref("workRole", 2),
            "workType": ctx.ref("workType", 1),
            "billTime": "Billable",
            "billExpenses": "Billable",
            "billProducts": "Billable",
            "currency": company["currency"],
            "periodType": "Current",
            "autoInvoiceFlag": True,
            "agreementStatus": "Active",
            "_info": audit_info(
                iso(at(start, 9)),
                "jmorales",
                iso(start),
                additions_href=f"/finance/agreements/{aid}/additions",
            ),
        }
        agreements.add(record)
        ctx.put_ref(
            "agreement",
            aid,
            ref("agreement", aid, name=record["name"], type="Managed Services", chargeFirmFlag=False),
        )
        ctx.agreements_by_company.setdefault(company["id"], []).append(record)
    ctx.data.tables["agreements"] = agreements
    ctx.data.tables["additions"] = additions


def _addition(
    ctx, addition_id, aid, company, idx, qty, price, cost, taxable, uom, desc, effective, seq
) -> dict:
    unit_price, unit_cost = price_in(ctx, company, price), price_in(ctx, company, cost)
    dec = company["currency"]["numberOfDecimals"]
    return {
        "id": addition_id,
        "product": ref("ivItem", 500 + idx, identifier=names.CATALOG[idx][0], serializedFlag=False),
        "quantity": qty,
        "lessIncluded": 0.0,
        "unitPrice": unit_price,
        "unitCost": unit_cost,
        "billCustomer": "Billable",
        "effectiveDate": iso(effective),
        "taxableFlag": taxable,
        "invoiceDescription": desc,
        "purchaseItemFlag": False,
        "specialOrderFlag": False,
        "agreementId": aid,
        "description": desc,
        "billedQuantity": qty,
        "uom": uom,
        "extPrice": money(qty * unit_price, dec),
        "extCost": money(qty * unit_cost, dec),
        "sequenceNumber": float(seq + 1),
        "margin": money(qty * (unit_price - unit_cost), dec),
        "prorateCurrentPeriodFlag": False,
        "agreementStatus": "Active",
        "_info": audit_info(iso(at(effective, 10)), "lmartin", iso(effective)),
    }


def active_additions(ctx: SeedContext, agreement_id: int, on: date) -> list[dict]:
    stamp = iso(on)
    return [
        a
        for a in ctx.additions_by_agreement[agreement_id]
        if a["effectiveDate"] <= stamp
        and ("cancelledDate" not in a or a["cancelledDate"] > stamp)
        and a["billCustomer"] == "Billable"
    ]


def _projects(ctx: SeedContext) -> None:
    table = EagerTable()
    board = ref("projectBoard", 1, name="Professional Services")
    for n, pname in enumerate(names.PROJECT_NAMES, start=1):
        company = ctx.customers[(n * 3) % len(ctx.customers)]
        pid = 70 + n
        fixed = n % 2 == 0
        start = ctx.anchor - timedelta(days=200 - n * 15)
        amount = price_in(ctx, company, 12000.0 + 2500 * n)
        record = {
            "id": pid,
            "name": f"{company['identifier']} - {pname}",
            "billingMethod": "FixedFee" if fixed else "ActualRates",
            "billingAmount": amount if fixed else 0.0,
            "billingRateType": "WorkRole",
            "billExpenses": "Billable",
            "billProducts": "Billable",
            "billTime": "Billable",
            "billProjectAfterClosedFlag": False,
            "billUnapprovedTimeAndExpense": False,
            "billingTerms": company["billingTerms"],
            "board": board,
            "budgetAnalysis": "ActualHours",
            "budgetFlag": True,
            "budgetHours": 40.0 + 10 * n,
            "company": ctx.ref("company", company["id"]),
            "contact": ctx.contacts_by_company[company["id"]][0],
            "currency": company["currency"],
            "downpayment": money(amount * 0.25, company["currency"]["numberOfDecimals"]) if fixed else 0.0,
            "estimatedStart": iso(start),
            "estimatedEnd": iso(start + timedelta(days=90)),
            "actualStart": iso(start),
            "estimatedHours": 40.0 + 10 * n,
            "percentComplete": 0.1 * n,
            "location": ctx.ref("location", 1),
            "department": ctx.ref("department", 2),
            "manager": ctx.ref("member", 146),
            "restrictDownPaymentFlag": False,
            "status": ref("projectStatus", 2, name="In Progress"),
            "closedFlag": False,
            "type": ref("projectType", 1, name="Infrastructure"),
            "doNotDisplayInPortalFlag": False,
            "billToCompany": ctx.ref("company", company["id"]),
            "taxCode": company["taxCode"],
            "_info": audit_info(iso(at(start, 9)), "fnguyen", iso(start)),
        }
        table.add(record)
        ctx.put_ref("project", pid, ref("project", pid, name=record["name"]))
        ctx.projects_by_company.setdefault(company["id"], []).append(record)
    ctx.data.tables["projects"] = table


def _tickets(ctx: SeedContext) -> None:
    tickets, notes = EagerTable(), EagerTable()
    rng = ctx.rng
    count = min(60 + ctx.invoice_count // 2, 1500)
    statuses = [
        ref("serviceStatus", 1, name="New", sort=0),
        ref("serviceStatus", 5, name="Completed", sort=5),
        ref("serviceStatus", 6, name="Closed", sort=6),
    ]
    board = ref("board", 1, name="Help Desk")
    priority = ref("priority", 8, name="Priority 3 - Normal Response", sort=6, level="Medium")
    note_id = 1
    for n in range(1, count + 1):
        company = ctx.customers[(n - 1) % len(ctx.customers)]
        cid = company["id"]
        tid = 4000 + n
        opened = ctx.anchor - timedelta(days=rng.randint(5, 360))
        projects = ctx.projects_by_company.get(cid)
        is_project = bool(projects) and n % 5 == 0
        summary = (
            f"{projects[0]['name'].split(' - ')[1]}: phase task {n % 7 + 1}"
            if is_project
            else names.SERVICE_SUMMARIES[n % len(names.SERVICE_SUMMARIES)]
        )
        owner = ctx.members[n % 12]
        closed = n % 3 != 0
        contact = ctx.contacts_by_company[cid][n % len(ctx.contacts_by_company[cid])]
        record = {
            "id": tid,
            "summary": summary,
            "recordType": "ProjectTicket" if is_project else "ServiceTicket",
            "board": board,
            "status": statuses[2 if closed else n % 2],
            "company": ctx.ref("company", cid),
            "site": company["site"],
            "siteName": "Main",
            "addressLine1": company["addressLine1"],
            "city": company["city"],
            "stateIdentifier": company["state"],
            "zip": company["zip"],
            "country": company["country"],
            "contact": contact,
            "contactName": contact["name"],
            "type": ref("serviceType", 1, name="Incident" if n % 4 else "Request"),
            "owner": owner["_ref"],
            "priority": priority,
            "severity": "Medium",
            "impact": "Medium",
            "allowAllClientsPortalView": False,
            "customerUpdatedFlag": False,
            "automaticEmailContactFlag": True,
            "automaticEmailResourceFlag": False,
            "automaticEmailCcFlag": False,
            "initialDescription": f"{summary}. Reported by {contact['name']}.",
            "closedFlag": closed,
            "approved": True,
            "billingMethod": "ActualRates",
            "billTime": "Billable",
            "billExpenses": "Billable",
            "billProducts": "Billable",
            "location": ctx.ref("location", 1),
            "department": ctx.ref("department", 1),
            "currency": company["currency"],
            "isInSla": n % 7 != 0,
            "hasChildTicket": False,
            "_info": audit_info(
                iso(at(opened + timedelta(days=2), 15)),
                owner["identifier"],
                iso(at(opened, 9)),
                notes_href=f"/service/tickets/{tid}/notes",
                timeentries_href=f"/time/entries?conditions=(chargeToType='ServiceTicket' OR "
                f"chargeToType='ProjectTicket') AND chargeToId={tid}",
            ),
        }
        if closed:
            record["closedDate"] = iso(at(opened + timedelta(days=2), 16))
            record["closedBy"] = owner["identifier"]
        agreements = ctx.agreements_by_company.get(cid)
        if agreements and not is_project:
            record["agreement"] = ctx.ref("agreement", agreements[0]["id"])
            record["agreementType"] = "Managed Services"
        tickets.add(record)
        ctx.put_ref("ticket", tid, ref("ticket", tid, summary=summary))
        ctx.tickets_by_company.setdefault(cid, []).append(record)
        for k in range(1 + n % 3):
            notes.add(
                {
                    "id": note_id,
                    "ticketId": tid,
                    "text": record["initialDescription"]
                    if k == 0
                    else names.TIME_NOTES[(n + k) % len(names.TIME_NOTES)],
                    "detailDescriptionFlag": k == 0,
                    "internalAnalysisFlag": k == 2,
                    "resolutionFlag": k == 1,
                    "issueFlag": False,
                    "member": owner["_ref"],
                    "customerUpdatedFlag": False,
                    "processNotifications": False,
                    "internalFlag": k == 2,
                    "externalFlag": k != 2,
                    "dateCreated": iso(at(opened, 9 + k)),
                    "createdBy": owner["identifier"],
                    "_info": audit_info(iso(at(opened, 9 + k)), owner["identifier"]),
                },
                parent_id=tid,
            )
            note_id += 1
    ctx.data.tables["tickets"] = tickets
    ctx.data.tables["ticketNotes"] = notes
