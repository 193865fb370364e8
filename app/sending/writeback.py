"""After a send, the invoice's billing status in ConnectWise becomes the workspace's "sent" status
(``send_settings.sent_status_id``, one with ConnectWise's Sent flag), so ConnectWise's own batch emailing does not
send it a second time. The email has gone out whatever happens here: a refusal is recorded on the send
(``writeback`` failed, with the reason), never retried by sending again.

The current status is read first (uncached): already the target, nothing is written; closed in ConnectWise (paid,
void, closed) it is left alone (``skipped``): a reminder or a late send must not reopen a paid invoice as Sent.
The PATCH itself is the same one review's write-back uses (``status`` replaced, safe to repeat)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.connectwise import errors as cw_errors
from app.connectwise.records import InvalidRecord

FIELDS = "id,status/id,status/name,status/isClosed,glBatch/id"


@dataclass(frozen=True)
class Outcome:
    state: str  # done | failed | not_set | skipped
    reason: str | None = None


def write_sent_status(client: Any, invoice_id: int, status_id: int | None, status_name: str | None) -> Outcome:
    """Set the invoice's billing status to ``status_id``; never raises."""
    if not status_id:
        return Outcome("not_set", "No “sent” billing status is chosen on the sending settings page, so ConnectWise "
                                  "was not told.")
    name = status_name or f"status {status_id}"
    try:
        current = client.get(f"finance/invoices/{int(invoice_id)}", {"fields": FIELDS}, cache=False)
        status = current.get("status") if isinstance(current, dict) else None
        status = status if isinstance(status, dict) else {}
        if status.get("id") == status_id:
            return Outcome("done")
        if status.get("isClosed"):
            return Outcome("skipped", f"Left as “{status.get('name')}” in ConnectWise: the invoice is closed there.")
        client.patch(f"finance/invoices/{int(invoice_id)}",
                     [{"op": "replace", "path": "status", "value": {"id": int(status_id)}}], idempotent=True)
        return Outcome("done")
    except cw_errors.PermissionMissing as exc:
        return Outcome("failed", f"ConnectWise refused to set “{name}”: {exc}. Give the API member's security role "
                                 "edit rights on Finance › Invoicing.")
    except cw_errors.AuthRefused as exc:
        return Outcome("failed", f"ConnectWise refused to set “{name}”: {exc}.")
    except cw_errors.NotFound:
        return Outcome("failed", "The invoice no longer exists in ConnectWise, so its status was not set.")
    except cw_errors.BadRequest as exc:
        return Outcome("failed", f"ConnectWise refused to set “{name}”: {exc}.")
    except (cw_errors.ConnectWiseError, InvalidRecord) as exc:
        return Outcome("failed", f"ConnectWise could not be reached to set “{name}”: {exc}.")
