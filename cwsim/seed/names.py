"""Static catalogues the seed draws from: customers, staff, products, roles, and note phrasing.

Plain data only; nothing random happens here.
"""
from __future__ import annotations

# identifier, name, address line, city, state, zip, country, currency code, tax code id, terms id, tax id
CUSTOMERS: list[tuple[str, ...]] = [
    ("AcmeDental", "Acme Dental Group", "1450 Oak Park Blvd", "Austin", "TX", "78701", "US", "USD", "1", "1",
     "74-3920117"),
    ("BlueRidgeLaw", "Blue Ridge Law Partners", "220 Main Street, Suite 400", "Asheville", "NC", "28801", "US",
     "USD", "3", "1", "56-2284410"),
    ("CedarAccount", "Cedar & Finch Accounting", "88 Pine Street", "New York", "NY", "10005", "US", "USD", "2",
     "2", "13-4471902"),
    ("DeltaLogist", "Delta Logistics LLC", "4100 Harbor Way", "Houston", "TX", "77002", "US", "USD", "1", "1",
     "76-0039124"),
    ("EvergreenVet", "Evergreen Veterinary Clinics", "9 Maple Avenue", "Portland", "OR", "97205", "US", "USD",
     "5", "3", "93-1128845"),
    ("FairviewSch", "Fairview Charter School", "600 Fairview Road", "Raleigh", "NC", "27608", "US", "USD", "5",
     "4", ""),
    ("GrantArch", "Grant & Hollis Architects", "77 Wacker Drive", "Chicago", "IL", "60601", "US", "USD", "3", "1",
     "36-4410987"),
    ("HarborMfg", "Harbor Manufacturing Co.", "12 Industrial Park Rd", "Cleveland", "OH", "44114", "US", "USD",
     "3", "1", "34-1920043"),
    ("IronwoodCU", "Ironwood Credit Union", "300 Bank Street", "Denver", "CO", "80202", "US", "USD", "3", "2",
     "84-0577120"),
    ("JuniperMed", "Juniper Medical Associates", "15 Hospital Drive", "Phoenix", "AZ", "85004", "US", "USD", "3",
     "1", "86-2290014"),
    ("KestrelAero", "Kestrel Aerospace Parts", "5 Runway Loop", "Wichita", "KS", "67209", "US", "USD", "3", "1",
     "48-1187765"),
    ("LakesideRE", "Lakeside Realty", "1800 Shore Drive", "Madison", "WI", "53703", "US", "USD", "3", "3",
     "39-2201934"),
    ("MeridianIns", "Meridian Insurance Brokers", "410 Commerce St", "Nashville", "TN", "37219", "US", "USD", "3",
     "1", "62-1773301"),
    ("NorthStarEng", "North Star Engineering", "2 Polaris Court", "Minneapolis", "MN", "55401", "US", "USD", "3",
     "1", "41-1650092"),
    ("OakmontHotel", "Oakmont Hotel Group", "900 Grand Ave", "Miami", "FL", "33131", "US", "USD", "3", "1",
     "59-3320871"),
    ("PioneerFoods", "Pioneer Foods Distribution", "75 Depot Street", "Boise", "ID", "83702", "US", "USD", "3",
     "2", "82-0449913"),
    ("QuarryStone", "Quarry Stone Supply", "3 Granite Way", "Richmond", "VA", "23219", "US", "USD", "3", "1",
     "54-1182290"),
    ("RiversideCh", "Riverside Community Church", "100 River Road", "Sacramento", "CA", "95814", "US", "USD", "5",
     "3", ""),
    ("SummitPT", "Summit Physical Therapy", "44 Summit Ave", "Salt Lake City", "UT", "84111", "US", "USD", "3",
     "1", "87-0632219"),
    ("TidewaterMar", "Tidewater Marine Services", "8 Dock Street", "Norfolk", "VA", "23510", "US", "USD", "3", "1",
     "54-2290013"),
    ("UrbanGrind", "Urban Grind Coffee Roasters", "512 Roast Lane", "Seattle", "WA", "98101", "US", "USD", "3",
     "3", "91-2204471"),
    ("VanguardPrint", "Vanguard Print & Design", "27 Press Street", "Boston", "MA", "02110", "US", "USD", "3", "1",
     "04-3320017"),
    ("WerkstattBer", "Werkstatt Berlin GmbH", "Friedrichstraße 120", "Berlin", "BE", "10117", "DE", "EUR", "4",
     "1", "DE287465391"),
    ("VanDijkLog", "Van Dijk Logistiek B.V.", "Keizersgracht 221", "Amsterdam", "NH", "1016 DV", "NL", "EUR", "7",
     "1", "NL859301246B01"),
    ("SakuraTrade", "Sakura Trading K.K.", "2-7-1 Marunouchi, Chiyoda-ku", "Tokyo", "13", "100-0005", "JP", "JPY",
     "6", "1", "T1234567890123"),
]

VENDORS: list[tuple[str, str]] = [
    ("IngramMicro", "Ingram Micro"), ("Pax8", "Pax8"), ("TDSynnex", "TD SYNNEX"), ("DellTech", "Dell Technologies"),
]

COUNTRIES = {"US": (1, "United States"), "DE": (2, "Germany"), "NL": (3, "Netherlands"), "JP": (4, "Japan")}

# id, code, name, symbol, decimal sep, thousands sep, decimals, right aligned symbol
CURRENCIES = {
    "USD": (1, "USD", "US Dollar", "$", ".", ",", 2, False),
    "EUR": (2, "EUR", "Euro", "€", ",", ".", 2, True),
    "JPY": (3, "JPY", "Japanese Yen", "¥", ".", ",", 0, False),
}

# identifier, first, last, title, role idx, hourly cost, inactive
MEMBERS: list[tuple] = [
    ("jmorales", "Jordan", "Morales", "Service Manager", 2, 62.0, False),
    ("apatel", "Anika", "Patel", "Senior Network Engineer", 2, 58.0, False),
    ("bchen", "Brian", "Chen", "Systems Engineer", 1, 44.0, False),
    ("dokafor", "Daniel", "Okafor", "Help Desk Technician", 0, 28.0, False),
    ("ekowalski", "Emma", "Kowalski", "Help Desk Technician", 0, 27.0, False),
    ("fnguyen", "Faith", "Nguyen", "Project Manager", 3, 55.0, False),
    ("gsilva", "Gabriel", "Silva", "Systems Engineer", 1, 45.0, False),
    ("hlarsen", "Hannah", "Larsen", "Virtual CIO", 4, 80.0, False),
    ("iross", "Isaac", "Ross", "Field Technician", 0, 30.0, False),
    ("jwhite", "Julia", "White", "Cloud Engineer", 1, 50.0, False),
    ("kbrooks", "Kevin", "Brooks", "Security Analyst", 2, 60.0, False),
    ("lmartin", "Laura", "Martin", "Billing Specialist", 5, 32.0, False),
    ("mtanaka", "Mei", "Tanaka", "Systems Engineer", 1, 47.0, False),
    ("nfoster", "Noah", "Foster", "Help Desk Technician", 0, 26.0, True),
    ("oreyes", "Olivia", "Reyes", "Network Engineer", 1, 46.0, True),
]

# name, rate (USD/hour)
WORK_ROLES = [("Help Desk", 95.0), ("Systems Engineer", 135.0), ("Senior Engineer", 165.0),
              ("Project Manager", 150.0), ("vCIO", 195.0), ("Administration", 0.0)]
# name, billable by default, utilisation
WORK_TYPES = [("Remote Support", True), ("Onsite Support", True), ("After Hours", True), ("Project Work", True),
              ("Travel", True), ("Internal Admin", False)]

# identifier, description, cost, price, product class, taxable, unit of measure
CATALOG: list[tuple] = [
    ("M365-BP", "Microsoft 365 Business Premium (monthly)", 22.00, 26.40, "NonInventory", False, "Each"),
    ("M365-BS", "Microsoft 365 Business Standard (monthly)", 12.50, 15.60, "NonInventory", False, "Each"),
    ("EXO-P1", "Exchange Online Plan 1 (monthly)", 4.00, 5.50, "NonInventory", False, "Each"),
    ("MDR-EP", "Managed EDR per endpoint (monthly)", 6.25, 11.00, "Service", False, "Each"),
    ("BKP-SRV", "Server backup (per server, monthly)", 38.00, 75.00, "Service", False, "Each"),
    ("BKP-M365", "Microsoft 365 backup (per user, monthly)", 2.10, 4.00, "Service", False, "Each"),
    ("DELL-LAT5450", "Dell Latitude 5450 14\" laptop", 1012.00, 1249.00, "Inventory", True, "Each"),
    ("DELL-OPT7020", "Dell OptiPlex 7020 Micro desktop", 689.00, 849.00, "Inventory", True, "Each"),
    ("DELL-P2425H", "Dell 24\" monitor P2425H", 168.00, 219.00, "Inventory", True, "Each"),
    ("FG-60F", "Fortinet FortiGate 60F firewall", 520.00, 695.00, "Inventory", True, "Each"),
    ("FG-60F-UTP1", "FortiGate 60F UTP bundle, 1 year", 410.00, 540.00, "NonInventory", True, "Each"),
    ("MR36", "Cisco Meraki MR36 access point", 410.00, 529.00, "Inventory", True, "Each"),
    ("MS120-24P", "Cisco Meraki MS120-24P switch", 1090.00, 1399.00, "Inventory", True, "Each"),
    ("UPS-1500", "APC Smart-UPS 1500VA", 540.00, 689.00, "Inventory", True, "Each"),
    ("CAT6-25", "Cat6 patch cable 25ft", 4.10, 9.50, "Inventory", True, "Each"),
    ("DOCK-WD22", "Dell WD22TB4 Thunderbolt dock", 245.00, 309.00, "Inventory", True, "Each"),
    ("SSL-OV", "SSL certificate, OV, 1 year", 79.00, 149.00, "NonInventory", True, "Each"),
    ("DOMAIN-COM", ".com domain renewal", 12.00, 25.00, "NonInventory", False, "Each"),
    ("LABOR-INST", "Hardware installation (flat)", 0.00, 150.00, "Service", False, "Each"),
    ("TONER-HP", "HP 58X toner cartridge", 182.00, 199.00, "Inventory", True, "Each"),
]

# Agreement additions: catalog identifier, unit price override (None = catalog price)
AGREEMENT_ADDITIONS = [("M365-BP", None), ("MDR-EP", None), ("BKP-SRV", None), ("BKP-M365", None)]

SERVICE_SUMMARIES = [
    "Outlook keeps prompting for password", "New hire laptop setup", "VPN drops every few minutes",
    "Printer on 2nd floor offline", "Replace failing UPS battery", "Shared drive permissions request",
    "Phishing email reported by staff", "Wi-Fi slow in conference room", "Quarterly patch review",
    "Server disk space warning", "Reset MFA for user", "Offboard departing employee",
    "Backup job failed overnight", "QuickBooks won't open company file", "Firewall firmware upgrade",
    "Teams calls dropping audio", "Move desk phone and PC to new office", "Scanner to email not working",
]

PROJECT_NAMES = [
    "Microsoft 365 migration", "Office network refresh", "Server 2016 replacement", "New branch office build-out",
    "Firewall replacement", "Intune device rollout", "Backup and DR overhaul", "Wi-Fi upgrade",
]

TIME_NOTES = [
    "Reviewed the sign-in logs, found a stale cached credential in Credential Manager, cleared it and confirmed "
    "Outlook connects without prompting.",
    "Imaged the new laptop, joined it to Entra ID, installed the line-of-business apps and walked the user "
    "through OneDrive sync.",
    "Captured the VPN client logs, found the MTU mismatch on the tunnel interface, adjusted it and monitored "
    "for 30 minutes with no drops.",
    "Printer had a stale IP reservation; updated DHCP, re-added the queue on the print server and tested a "
    "page from two workstations.",
    "Replaced the UPS battery pack, ran a self-test and confirmed runtime on the monitoring dashboard.",
    "Granted the requested group membership on the Finance share after manager approval, verified access.",
    "Analysed the reported message headers, blocked the sender domain, purged copies from 14 mailboxes.",
    "Moved the conference room AP to a clean channel and adjusted transmit power; speed test now 300 Mbps.",
    "Reviewed the monthly patch report, approved the pending updates and scheduled the reboot window.",
    "Cleared old IIS logs and shadow copies on the file server, freeing 120 GB; added an alert at 85%.",
    "Verified the user's identity by phone, reset MFA registration and confirmed sign-in from the new phone.",
    "Disabled the account, converted the mailbox to shared, reclaimed the licence and collected equipment.",
    "Investigated the failed backup job, renewed the expired storage credential and re-ran the job successfully.",
    "Repaired the QuickBooks company file with File Doctor and restored user permissions on the data folder.",
    "Upgraded the firewall firmware during the maintenance window and verified VPN and web filtering rules.",
    "Planning call with the client to confirm scope, milestones and the cut-over weekend.",
    "Configured the new switch stack, VLANs and uplinks per the design document; tested failover.",
]
THIN_NOTES = ["Fixed it.", "done", "Reset pw", "Called user", "See ticket"]

EXPENSE_TYPES = [("Mileage", 1), ("Parking", 2), ("Meals", 3), ("Hardware purchase", 4), ("Travel - Airfare", 5),
                 ("Hotel", 6)]
