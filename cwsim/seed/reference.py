"""Tenant set-up: currencies, countries, tax codes, billing statuses/terms, roles, members, billing setups."""

from __future__ import annotations

from datetime import date

from cwsim.seed import names
from cwsim.seed.context import SeedContext, at
from cwsim.serialize import audit_info, iso, ref
from cwsim.store import EagerTable

LEVEL_NAMES = ["One", "Two", "Three", "Four", "Five", "Six"]

# id, identifier, description, [(caption, rate %, services, expenses, products)]
TAX_CODES = [
    (
        1,
        "TX-AUSTIN",
        "Texas - Austin",
        [("Texas State", 6.25, False, False, True), ("Austin City", 2.0, False, False, True)],
    ),
    (
        2,
        "NY-NYC",
        "New York City",
        [
            ("New York State", 4.0, True, False, True),
            ("NYC", 4.5, True, False, True),
            ("MCTD", 0.375, True, False, True),
        ],
    ),
    (3, "US-GOODS", "Goods only (6%)", [("State", 6.0, False, False, True)]),
    (4, "DE-VAT19", "Germany VAT 19%", [("MwSt.", 19.0, True, True, True)]),
    (5, "EXEMPT", "Tax exempt", [("Exempt", 0.0, False, False, False)]),
    (6, "JP-CT10", "Japan consumption tax 10%", [("消費税", 10.0, True, True, True)]),
    (7, "NL-BTW21", "Netherlands BTW 21%", [("BTW", 21.0, True, True, True)]),
]

# id, name, sort, default, closed, inactive, sent
BILLING_STATUSES = [
    (1, "New", 1, True, False, False, False),
    (2, "Ready for Review", 2, False, False, False, False),
    (3, "Approved", 3, False, False, False, False),
    (4, "Rejected", 4, False, False, False, False),
    (5, "Sent", 5, False, False, False, True),
    (6, "Paid", 6, False, True, False, True),
    (7, "Closed", 7, False, True, False, True),
    (8, "Void", 8, False, True, True, False),
]
OPEN_STATUSES = (1, 2, 3)
BILLING_TERMS = {
    1: ("Net 30 days", 30),
    2: ("Net 15 days", 15),
    3: ("Due on receipt", 0),
    4: ("Net 45 days", 45),
}


def build_reference(ctx: SeedContext) -> None:
    _currencies_and_countries(ctx)
    _tax_codes(ctx)
    _billing(ctx)
    _roles(ctx)
    _members(ctx)
    _billing_setups(ctx)


def _currencies_and_countries(ctx: SeedContext) -> None:
    for code, (cid, ccode, name, symbol, dec_sep, thou_sep, decimals, right) in names.CURRENCIES.items():
        ctx.currencies[code] = ref(
            "currency",
            cid,
            symbol=symbol,
            currencyCode=ccode,
            decimalSeparator=dec_sep,
            numberOfDecimals=decimals,
            thousandsSeparator=thou_sep,
            negativeParenthesesFlag=False,
            displaySymbolFlag=True,
            currencyIdentifier=ccode,
            displayIdFlag=False,
            rightAlign=right,
            name=name,
        )
    for code, (cid, name) in names.COUNTRIES.items():
        ctx.put_ref("country", code, ref("country", cid, identifier=code, name=name))
    ctx.put_ref("location", 1, ref("location", 1, name="Main Office"))
    ctx.put_ref("department", 1, ref("department", 1, identifier="SVC", name="Managed Services"))
    ctx.put_ref("department", 2, ref("department", 2, identifier="PRJ", name="Professional Services"))
    ctx.put_ref("site", "main", {})


def _tax_codes(ctx: SeedContext) -> None:
    codes, levels = EagerTable(), EagerTable()
    level_id = 1
    effective = iso(date(2020, 1, 1))
    for tax_id, identifier, description, tax_levels in TAX_CODES:
        country = (
            "DE"
            if identifier.startswith("DE")
            else "NL"
            if identifier.startswith("NL")
            else ("JP" if identifier.startswith("JP") else "US")
        )
        record = {
            "id": tax_id,
            "identifier": identifier,
            "description": description,
            "invoiceCaption": tax_levels[0][0] if len(tax_levels) == 1 else "Sales Tax",
            "country": ctx.ref("country", country),
            "effectiveDate": effective,
            "defaultFlag": tax_id == 3,
            "displayOnInvoiceFlag": True,
            "canadaCalculateGSTFlag": False,
            "_info": audit_info(iso(at(date(2024, 1, 2), 9)), "lmartin"),
        }
        for n, (caption, rate, services, expenses, products) in enumerate(tax_levels):
            word = LEVEL_NAMES[n]
            record.update(
                {
                    f"level{word}Rate": rate,
                    f"level{word}RateType": "Percent",
                    f"level{word}Caption": caption,
                    f"level{word}ServicesFlag": services,
                    f"level{word}ExpensesFlag": expenses,
                    f"level{word}ProductsFlag": products,
                    f"level{word}ApplySingleUnitFlag": False,
                }
            )
            levels.add(
                {
                    "id": level_id,
                    "taxLevel": n + 1,
                    "taxRate": rate,
                    "rateType": "Percent",
                    "caption": caption,
                    "taxServicesFlag": services,
                    "taxExpensesFlag": expenses,
                    "taxProductsFlag": products,
                    "singleUnitFlag": False,
                    "_info": audit_info(record["_info"]["lastUpdated"], "lmartin"),
                },
                parent_id=tax_id,
            )
            level_id += 1
        codes.add(record)
        ctx.tax_codes[tax_id] = record
        ctx.put_ref("taxCode", tax_id, ref("taxCode", tax_id, name=identifier))
    ctx.data.tables["taxCodes"] = codes
    ctx.data.tables["taxCodeLevels"] = levels


def _billing(ctx: SeedContext) -> None:
    statuses = EagerTable()
    for sid, name, sort, default, closed, inactive, sent in BILLING_STATUSES:
        statuses.add(
            {
                "id": sid,
                "name": name,
                "sortOrder": sort,
                "defaultFlag": default,
                "closedFlag": closed,
                "inactiveFlag": inactive,
                "sentFlag": sent,
                "connectWiseId": f"5f0c2b7e-0000-4000-8000-{sid:012d}",
                "_info": audit_info(iso(at(date(2023, 3, 1), 10)), "jmorales"),
            }
        )
        ctx.put_ref("status", sid, ref("status", sid, name=name, isClosed=closed))
    ctx.data.tables["billingStatuses"] = statuses
    for tid, (name, _days) in BILLING_TERMS.items():
        ctx.put_ref("billingTerms", tid, ref("billingTerms", tid, name=name))


def _roles(ctx: SeedContext) -> None:
    for n, (name, rate) in enumerate(names.WORK_ROLES, start=1):
        ctx.put_ref("workRole", n, ref("workRole", n, name=name))
        ctx.work_roles.append({"id": n, "name": name, "rate": rate})
    work_types = EagerTable()
    for n, (name, utilization) in enumerate(names.WORK_TYPES, start=1):
        ctx.put_ref("workType", n, ref("workType", n, name=name, utilizationFlag=utilization))
        work_types.add(_work_type(n, name, utilization, inactive=False))
    # A retired work type: still the tenant's name (old time entries carry it), never on new time.
    n = len(names.WORK_TYPES) + 1
    work_types.add(_work_type(n, "Legacy Bench Repair", True, inactive=True))
    ctx.data.tables["workTypes"] = work_types
    ctx.put_ref("securityRole", 1, ref("securityRole", 1, name="Admin"))
    ctx.put_ref("securityRole", 2, ref("securityRole", 2, name="Technician"))


def _work_type(n: int, name: str, billable: bool, inactive: bool) -> dict:
    """A ``WorkType`` record of ``/time/workTypes`` (the tenant's own work-type names)."""
    return {
        "id": n,
        "name": name,
        "billTime": "Billable" if billable else "DoNotBill",
        "rateType": "Multiplier",
        "rate": 1.5 if name == "After Hours" else 1.0,
        "hoursMin": 0.0,
        "hoursMax": 0.0,
        "roundBillHoursTo": 0.25,
        "inactiveFlag": inactive,
        "overallDefaultFlag": n == 1,
        "activityDefaultFlag": False,
        "utilizationFlag": billable,
        "costMultiplier": 1.0,
        "integrationXRef": "",
        "connectWiseId": f"7a1d3c5e-0000-4000-8000-{n:012d}",
        "_info": audit_info(iso(at(date(2023, 3, 1), 9)), "jmorales"),
    }


def _members(ctx: SeedContext) -> None:
    table = EagerTable()
    rng = ctx.rng
    for n, (ident, first, last, title, role_idx, cost, inactive) in enumerate(names.MEMBERS, start=1):
        role = ctx.work_roles[role_idx]
        hired = date(2016 + n % 8, 1 + n % 12, 1 + (n * 3) % 27)
        email = f"{first.lower()}.{last.lower()}@bettersim-it.example"
        record = {
            "id": n + 140,
            "identifier": ident,
            "disableOnlineFlag": False,
            "licenseClass": "F",
            "inactiveFlag": inactive,
            "firstName": first,
            "middleInitial": "",
            "lastName": last,
            "hireDate": iso(hired),
            "officeEmail": email,
            "primaryEmail": email,
            "defaultEmail": "Office",
            "officePhone": f"512-555-{1000 + n * 37:04d}",
            "defaultPhone": "Office",
            "title": title,
            "securityRole": ctx.ref("securityRole", 1 if role_idx >= 2 else 2),
            "defaultLocation": ctx.ref("location", 1),
            "defaultDepartment": ctx.ref("department", 1),
            "workRole": ctx.ref("workRole", role["id"]),
            "workType": ctx.ref("workType", 1),
            "hourlyCost": cost,
            "hourlyRate": role["rate"],
            "dailyCapacity": 8.0,
            "adminFlag": role_idx == 4,
            "timeZone": ref("timeZone", 1, name="Central Standard Time"),
            "country": ctx.ref("country", "US"),
            "enableMobileFlag": True,
            "_info": audit_info(iso(at(date(2025, 1, 1 + n), 8)), "jmorales"),
        }
        if inactive:
            record["inactiveDate"] = iso(date(2024, 11, 15 + n % 10))
        if n > 1:
            record["reportsTo"] = ref("member", 141, identifier="jmorales", name="Jordan Morales")
        table.add(record)
        member_ref = ctx.put_ref(
            "member",
            record["id"],
            ref("member", record["id"], identifier=ident, name=f"{first} {last}", dailyCapacity=8.0),
        )
        ctx.members.append({**record, "_ref": member_ref, "_role": role, "_rng_weight": rng.random()})
    for record in table.records.values():
        record["timeApprover"] = ctx.ref("member", 141)
        record["expenseApprover"] = ctx.ref("member", 152)
    ctx.data.tables["members"] = table


def _billing_setups(ctx: SeedContext) -> None:
    setups, routings = EagerTable(), EagerTable()
    invoice_tpl = ref("invoiceTemplate", 1, name="Standard Invoice")
    email_tpl = ref("emailTemplate", 1, name="Invoice email")
    setups.add(
        {
            "id": 1,
            "remitName": "BetterSim IT Services LLC",
            "location": ctx.ref("location", 1),
            "addressOne": "500 Congress Ave",
            "addressTwo": "Suite 1200",
            "city": "Austin",
            "state": ref("state", 44, identifier="TX", name="Texas"),
            "zip": "78701",
            "country": ctx.ref("country", "US"),
            "phone": "512-555-0100",
            "invoiceTitle": "INVOICE",
            "payableName": "BetterSim IT Services LLC",
            "topcomment": "Thank you for your business.",
            "invoiceFooter": "Please remit within terms. ACH details on file.",
            "overallInvoiceDefault": invoice_tpl,
            "standardInvoiceActual": invoice_tpl,
            "standardInvoiceFixed": invoice_tpl,
            "progressInvoice": invoice_tpl,
            "agreementInvoice": ref("invoiceTemplate", 2, name="Agreement Invoice"),
            "creditMemoInvoice": invoice_tpl,
            "downPaymentInvoice": invoice_tpl,
            "miscInvoice": invoice_tpl,
            "excludeDoNotBillTimeFlag": False,
            "excludeDoNotBillExpenseFlag": True,
            "excludeDoNotBillProductFlag": True,
            "prefixSuffixFlag": "Prefix",
            "prefixSuffixText": "INV-",
            "chargeAdjToFirmFlag": False,
            "noWatermarkFlag": False,
            "displayTaxFlag": True,
            "printLogoFlag": True,
            "emailTemplate": email_tpl,
            "localizedCountry": ctx.ref("country", "US"),
            "businessNumber": "EIN 82-4417730",
            "currency": ctx.currencies["USD"],
            "connectWiseId": "0c7d1a52-8b1e-4b4f-9f20-5d6ad2d4c001",
            "_info": audit_info(iso(at(date(2023, 2, 1), 9)), "jmorales"),
        }
    )
    ctx.put_ref("billingSetup", 1, ref("billingSetup", 1, name="BetterSim IT Services LLC"))
    for seq, (rule, routing, member_id) in enumerate(
        [("All", "Account", None), ("Agreement", "Member", 152), ("Project", "Project", 146)], start=1
    ):
        record = {
            "id": seq,
            "sequenceNumber": seq,
            "invoiceRule": rule,
            "routingRule": routing,
            "parentId": 1,
            "connectWiseId": f"9a1e0d4c-0000-4000-8000-{seq:012d}",
            "parentConnectWiseId": "0c7d1a52-8b1e-4b4f-9f20-5d6ad2d4c001",
            "_info": audit_info(iso(at(date(2023, 2, 1), 9)), "jmorales"),
        }
        if member_id:
            record["member"] = ctx.ref("member", member_id)
        routings.add(record, parent_id=1)
    ctx.data.tables["billingSetups"] = setups
    ctx.data.tables["billingSetupRoutings"] = routings
