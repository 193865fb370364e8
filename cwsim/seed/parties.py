"""Customers, vendors and their contacts."""

from __future__ import annotations

from datetime import date

from cwsim.seed import names
from cwsim.seed.context import SeedContext, at
from cwsim.serialize import audit_info, iso, ref
from cwsim.store import EagerTable

FIRST = [
    "Alex",
    "Maria",
    "Chris",
    "Priya",
    "Sam",
    "Lena",
    "Marcus",
    "Yuki",
    "Tom",
    "Aisha",
    "Ben",
    "Clara",
    "Diego",
    "Elif",
    "Frank",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kate",
]
LAST = [
    "Johnson",
    "Garcia",
    "Miller",
    "Shah",
    "Becker",
    "Okoro",
    "Sato",
    "Dubois",
    "Hughes",
    "Novak",
    "Reed",
    "Schmidt",
    "Costa",
    "Yilmaz",
    "Walsh",
    "Kim",
    "Jansen",
    "Bauer",
    "Lopez",
    "Ito",
]


def build_parties(ctx: SeedContext) -> None:
    companies, contacts = EagerTable(), EagerTable()
    rng = ctx.rng
    contact_id = 1001
    for n, row in enumerate(names.CUSTOMERS, start=1):
        ident, name, street, city, state, zip_code, country, currency, tax_id, terms_id, tax_ident = row
        cid = 250 + n
        site_ref = ref("site", 1000 + n, href_path=f"/company/companies/{cid}/sites/{1000 + n}", name="Main")
        company_ref = ctx.put_ref("company", cid, ref("company", cid, identifier=ident, name=name))
        acquired = date(2015 + n % 9, 1 + n % 12, 1 + n % 27)
        record = {
            "id": cid,
            "identifier": ident,
            "name": name,
            "status": ref("companyStatus", 1, name="Active"),
            "addressLine1": street,
            "city": city,
            "state": state,
            "zip": zip_code,
            "country": ctx.ref("country", country),
            "phoneNumber": _phone(rng, country),
            "website": f"www.{ident.lower()}.example",
            "territory": ctx.ref("location", 1),
            "accountNumber": f"C{cid:05d}",
            "dateAcquired": iso(acquired),
            "annualRevenue": 0.0,
            "numberOfEmployees": rng.choice([8, 12, 25, 40, 65, 120, 240]),
            "leadFlag": False,
            "unsubscribeFlag": False,
            "taxIdentifier": tax_ident,
            "taxCode": ctx.ref("taxCode", int(tax_id)),
            "billingTerms": ctx.ref("billingTerms", int(terms_id)),
            "billingSite": site_ref,
            "site": site_ref,
            "invoiceDeliveryMethod": ref("billingDelivery", 1, name="Email"),
            "invoiceToEmailAddress": f"accounts@{ident.lower()}.example",
            "currency": ctx.currencies[currency],
            "deletedFlag": False,
            "isVendorFlag": False,
            "types": [ref("companyType", 1, name="Client")],
            "timeZoneSetup": ref("timeZone", 1, name="Central Standard Time"),
            "_info": audit_info(
                iso(at(date(2025, 3, 1 + n % 27), 11, n % 60)),
                "jmorales",
                iso(acquired),
                contacts_href=f"/company/contacts?conditions=company/id={cid}",
                agreements_href=f"/finance/agreements?conditions=company/id={cid}",
                tickets_href=f"/service/tickets?conditions=company/id={cid}",
                invoices_href=f"/finance/invoices?conditions=company/id={cid}",
                sites_href=f"/company/companies/{cid}/sites",
            ),
        }
        people = []
        for k in range(2 + n % 2):
            first, last = FIRST[(n * 3 + k) % len(FIRST)], LAST[(n * 7 + k * 5) % len(LAST)]
            domain = f"{ident.lower()}.example"
            contact = {
                "id": contact_id,
                "firstName": first,
                "lastName": last,
                "company": company_ref,
                "site": site_ref,
                "addressLine1": street,
                "city": city,
                "state": state,
                "zip": zip_code,
                "country": ctx.ref("country", country),
                "inactiveFlag": False,
                "title": ["Office Manager", "Controller", "Owner", "IT Coordinator"][(n + k) % 4],
                "defaultPhoneType": "Direct",
                "defaultPhoneNbr": record["phoneNumber"],
                "defaultBillingFlag": k == 0,
                "defaultFlag": k == 0,
                "disablePortalLoginFlag": False,
                "unsubscribeFlag": False,
                "marriedFlag": False,
                "childrenFlag": False,
                "communicationItems": [
                    {
                        "id": contact_id * 10 + 1,
                        "type": ref("communicationType", 1, name="Email", coreEntityId="1"),
                        "value": f"{first.lower()}.{last.lower()}@{domain}",
                        "defaultFlag": True,
                        "domain": "@" + domain,
                        "communicationType": "Email",
                    },
                    {
                        "id": contact_id * 10 + 2,
                        "type": ref("communicationType", 2, name="Direct", coreEntityId="2"),
                        "value": record["phoneNumber"],
                        "defaultFlag": True,
                        "communicationType": "Phone",
                    },
                ],
                "types": [ref("contactType", 1, name="Billing" if k == 0 else "End User")],
                "_info": audit_info(iso(at(date(2025, 2, 1 + k), 10)), "dokafor", iso(acquired)),
            }
            contacts.add(contact)
            people.append(
                ctx.put_ref("contact", contact_id, ref("contact", contact_id, name=f"{first} {last}"))
            )
            contact_id += 1
        record["defaultContact"] = people[0]
        record["billingContact"] = people[0]
        companies.add(record)
        ctx.contacts_by_company[cid] = people
        ctx.customers.append(record)
    for n, (ident, name) in enumerate(names.VENDORS, start=1):
        cid = 200 + n
        ctx.put_ref("company", cid, ref("company", cid, identifier=ident, name=name))
        companies.add(
            {
                "id": cid,
                "identifier": ident,
                "name": name,
                "status": ref("companyStatus", 1, name="Active"),
                "country": ctx.ref("country", "US"),
                "isVendorFlag": True,
                "deletedFlag": False,
                "vendorIdentifier": ident.upper(),
                "types": [ref("companyType", 3, name="Vendor")],
                "currency": ctx.currencies["USD"],
                "leadFlag": False,
                "unsubscribeFlag": False,
                "_info": audit_info(iso(at(date(2023, 5, n), 9)), "jmorales"),
            }
        )
    ctx.data.tables["companies"] = companies
    ctx.data.tables["contacts"] = contacts


def _phone(rng, country: str) -> str:
    if country == "DE":
        return f"+49 30 {rng.randint(1000000, 9999999)}"
    if country == "NL":
        return f"+31 20 {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
    if country == "JP":
        return f"+81 3-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
    return f"{rng.randint(201, 989)}-555-{rng.randint(1000, 9999)}"
