"""What the API member's security role needs in ConnectWise, module by module, and which endpoint "Test connection"
reads to check each line. The connection form lists these, the test runs them and a refusal (403) names them: one
table, so the three cannot drift apart.

Names follow ConnectWise's security role screen (System › Security Roles: a module, its lines, and an Add, Edit,
Delete and Inquire level on each). The test reads with the Inquire level; the Edit and Add levels are first used when
Better Invoice writes (a review decision, a line corrected in review, the callbacks that tell it about changes).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permission:
    """One line of a security role: what it gives us, the levels we need, and the test's checks of it."""

    module: str  # "Finance"
    function: str  # "Invoicing"
    levels: tuple[str, ...]  # of ConnectWise's Add, Edit, Delete, Inquire
    used_for: str
    checks: tuple[tuple[str, str], ...]  # (the test's label, the endpoint whose /count needs Inquire)

    @property
    def name(self) -> str:
        return f"{self.module} › {self.function}"

    @property
    def writes(self) -> bool:
        return any(level != "Inquire" for level in self.levels)


PERMISSIONS: tuple[Permission, ...] = (
    Permission("Companies", "Company Maintenance", ("Inquire",), "your clients' names and addresses on invoices",
               (("Companies", "company/companies"),)),
    Permission("Companies", "Contacts", ("Inquire",), "the client contacts an invoice is sent to",
               (("Contacts", "company/contacts"),)),
    Permission("Finance", "Invoicing", ("Inquire", "Edit"),
               "invoices, their payments and billing statuses; Edit writes review decisions and “sent” back as a "
               "billing status and saves corrections made in review",
               (("Invoices", "finance/invoices"), ("Billing statuses", "finance/billingStatuses"))),
    Permission("Finance", "Billing Setup", ("Inquire",), "the remit-to address and invoice defaults",
               (("Billing setup", "finance/billingSetups"),)),
    Permission("Finance", "Tax Codes", ("Inquire",), "tax names and rates on invoices",
               (("Tax codes", "finance/taxCodes"),)),
    Permission("Finance", "Agreements", ("Inquire",), "agreement amounts and additions on invoices",
               (("Agreements", "finance/agreements"),)),
    Permission("Time & Expense", "Time Entry", ("Inquire", "Edit"),
               "time on invoices and their time-detail page; Edit saves corrections made in review",
               (("Time entries", "time/entries"),)),
    Permission("Time & Expense", "Expense Entry", ("Inquire", "Edit"),
               "expenses on invoices; Edit saves corrections made in review",
               (("Expense entries", "expense/entries"),)),
    Permission("Procurement", "Products", ("Inquire", "Edit"),
               "product lines on invoices; Edit saves corrections made in review",
               (("Products", "procurement/products"),)),
    Permission("Service Desk", "Service Tickets", ("Inquire",), "ticket numbers and summaries in time detail",
               (("Service tickets", "service/tickets"),)),
    Permission("Project", "Projects", ("Inquire",), "project names on project invoices",
               (("Projects", "project/projects"),)),
    Permission("System", "Member Maintenance", ("Inquire",), "your ConnectWise members, who become people here",
               (("Members", "system/members"),)),
    Permission("System", "Table Setup", ("Inquire",), "your work types, for the review rule that watches them",
               (("Work types", "time/workTypes"),)),
    Permission("System", "Callbacks", ("Inquire", "Add", "Delete"),
               "callbacks, so a change to an invoice in ConnectWise reaches the review at once; Add registers them, "
               "Delete removes them when the connection moves",
               (("Callbacks", "system/callbacks"),)),
)


def checks() -> tuple[tuple[str, str], ...]:
    """Every (label, endpoint) "Test connection" reads, in the order of the list on the form."""
    return tuple(check for p in PERMISSIONS for check in p.checks)


def modules() -> dict[str, str]:
    """Endpoint prefix -> the permission a refusal there names ("Finance › Invoicing")."""
    return {path: p.name for p in PERMISSIONS for _, path in p.checks}


def by_module() -> list[tuple[str, list[Permission]]]:
    """The permissions grouped by module, modules in the order above."""
    groups: dict[str, list[Permission]] = {}
    for p in PERMISSIONS:
        groups.setdefault(p.module, []).append(p)
    return list(groups.items())
