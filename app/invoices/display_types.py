"""Invoice display types: the one place that names an invoice's type, for the invoices list and the document.

ConnectWise has six invoice types (``Invoice.type``); a Standard invoice is shown by what it applies to
(product-reference §2.4): a sales order, a project phase, a project (Fixed Fee when the project bills a fixed
fee), a fixed-fee ticket, or plain Standard. Which project or ticket decides is ``deciding_project`` /
``deciding_ticket``; the caller looks up its billing method (the list for a page of rows at once, reconstruction
in its round of requests) and passes it in.
"""

from __future__ import annotations

from app.connectwise.records import InvoiceHeader

CW_DISPLAY = {"Agreement": "Agreement", "CreditMemo": "Credit Memo", "DownPayment": "Down Payment",
              "Miscellaneous": "Miscellaneous", "Progress": "Progress"}
FIXED_FEE = "FixedFee"


def deciding_project(h: InvoiceHeader) -> int | None:
    """The project whose billing method decides the type (a Standard invoice of a project), if any."""
    if h.type != "Standard" or h.apply_to_type in ("SalesOrder", "ProjectPhase"):
        return None
    if h.sales_order_id is not None or h.phase_id is not None:
        return None
    return h.project_id


def deciding_ticket(h: InvoiceHeader) -> int | None:
    """The ticket whose billing method decides the type (a Standard invoice applied to a ticket), if any."""
    if h.type != "Standard" or h.project_id is not None or h.apply_to_type != "Ticket":
        return None
    if h.sales_order_id is not None or h.phase_id is not None:
        return None
    return h.ticket_id or h.apply_to_id


def display_type(h: InvoiceHeader, project_billing: str = "", ticket_billing: str = "") -> str:
    """One of ``document.DISPLAY_TYPES``; ``*_billing`` is the deciding project's / ticket's billingMethod."""
    if h.type in CW_DISPLAY:
        return CW_DISPLAY[h.type]
    if h.apply_to_type == "SalesOrder" or h.sales_order_id is not None:
        return "Sales Order"
    if h.apply_to_type == "ProjectPhase" or h.phase_id is not None:
        return "Phase"
    if h.project_id is not None:
        return "Fixed Fee" if project_billing == FIXED_FEE else "Project"
    if h.apply_to_type == "Project":
        return "Project"
    if deciding_ticket(h) is not None and ticket_billing == FIXED_FEE:
        return "Fixed Fee"
    return "Standard"
