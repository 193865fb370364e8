"""The workspace's send settings: what is stored on ``send_settings`` and the defaults when nothing is; the form's
validation (each problem named by its field) and the audited save."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.log import Actor, Origin, record
from app.sending.models import SendSettings

DEFAULT_SUBJECT = "Invoice {number} from {sender}"
DEFAULT_BODY = ("Hello {client_name},\n\n"
                "Your invoice {number} for {amount_due} is due {due_date}.\n"
                "You can view and download it here: {link}\n\n"
                "Thank you,\n{sender}")
DEFAULT_REMINDER_SUBJECT = "Reminder: invoice {number} from {sender}"
DEFAULT_REMINDER_BODY = ("Hello {client_name},\n\n"
                         "This is a reminder that invoice {number} has {amount_due} outstanding, due {due_date}.\n"
                         "You can view and download it here: {link}\n\n"
                         "Thank you,\n{sender}")


@dataclass(frozen=True)
class SendConfig:
    """The settings a send reads, defaults filled in."""

    subject_template: str = DEFAULT_SUBJECT
    body_template: str = DEFAULT_BODY
    reminder_subject_template: str = DEFAULT_REMINDER_SUBJECT
    reminder_body_template: str = DEFAULT_REMINDER_BODY
    attach_pdf: bool = True
    sent_status_id: int | None = None
    sent_status_name: str | None = None
    reminders_enabled: bool = False
    remind_days_before: int | None = None
    remind_every_days: int | None = None


def load_settings(session: Session) -> SendConfig:
    """The current tenant's send settings (the session is tenant-bound)."""
    row = session.execute(select(SendSettings)).scalar_one_or_none()
    if row is None:
        return SendConfig()
    return SendConfig(subject_template=row.subject_template, body_template=row.body_template,
                      reminder_subject_template=row.reminder_subject_template,
                      reminder_body_template=row.reminder_body_template, attach_pdf=row.attach_pdf,
                      sent_status_id=row.sent_status_id, sent_status_name=row.sent_status_name,
                      reminders_enabled=row.reminders_enabled, remind_days_before=row.remind_days_before,
                      remind_every_days=row.remind_every_days)


SUBJECT_MAX = 200
BODY_MAX = 5000
DAYS_MIN, DAYS_MAX = 1, 60
TEMPLATE_FIELDS = ("subject_template", "body_template", "reminder_subject_template", "reminder_body_template")


class SendSettingsError(ValueError):
    """A setting that cannot be saved; ``field`` is the form field it came from."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def _template(form: Mapping[str, str], name: str, label: str, *, subject: bool) -> str:
    value = (form.get(name) or "").replace("\r\n", "\n")
    value = value.strip() if subject else value.strip("\n\r ")
    if not value:
        raise SendSettingsError(name, f"Write a {label}.")
    if subject and "\n" in value:
        raise SendSettingsError(name, f"The {label} is one line.")
    limit = SUBJECT_MAX if subject else BODY_MAX
    if len(value) > limit:
        raise SendSettingsError(name, f"The {label} is {len(value)} characters long; at most {limit}.")
    return value


def _days(form: Mapping[str, str], name: str) -> int | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not DAYS_MIN <= int(raw) <= DAYS_MAX:
        raise SendSettingsError(name, f"Give a whole number of days from {DAYS_MIN} to {DAYS_MAX}.")
    return int(raw)


def validate_form(form: Mapping[str, str], sent_statuses: Mapping[int, str] | None, current: SendConfig
                  ) -> SendConfig:
    """The posted form as settings. ``sent_statuses`` are the statuses (id -> name) that may be written after a
    send (None: they could not be read now, and then only the status already saved may stay). Raises
    ``SendSettingsError``."""
    values = {
        "subject_template": _template(form, "subject_template", "subject", subject=True),
        "body_template": _template(form, "body_template", "message", subject=False),
        "reminder_subject_template": _template(form, "reminder_subject_template", "reminder subject", subject=True),
        "reminder_body_template": _template(form, "reminder_body_template", "reminder message", subject=False),
    }
    raw_status = (form.get("sent_status_id") or "").strip()
    status_id: int | None = None
    if raw_status:
        if not raw_status.isdigit() or int(raw_status) <= 0:
            raise SendSettingsError("sent_status_id", "Pick one of your ConnectWise billing statuses.")
        status_id = int(raw_status)
        if sent_statuses is None and status_id != current.sent_status_id:
            raise SendSettingsError("sent_status_id", "ConnectWise could not be asked for your billing statuses, so "
                                                      "a new one cannot be checked now; try again later.")
        if sent_statuses is not None and status_id not in sent_statuses:
            raise SendSettingsError("sent_status_id", "That status does not have ConnectWise's Sent flag (or no "
                                                      "longer exists); pick one that does.")
    before, every = _days(form, "remind_days_before"), _days(form, "remind_every_days")
    enabled = form.get("reminders_enabled") == "on"
    if enabled and before is None and every is None:
        raise SendSettingsError("remind_days_before", "Give the days before the due date, the days between "
                                                      "reminders after it, or both.")
    name = None if status_id is None else (sent_statuses or {}).get(status_id, current.sent_status_name)
    return replace(current, **values, attach_pdf=form.get("attach_pdf") == "on", sent_status_id=status_id,
                   sent_status_name=name,
                   reminders_enabled=enabled, remind_days_before=before, remind_every_days=every)


def save_settings(session: Session, tenant_id: uuid.UUID | str, new: SendConfig, actor: Actor,
                  origin: Origin | None = None) -> dict[str, tuple[Any, Any]]:
    """Store ``new`` (validated), audited with what changed (before/after); returns the changes (empty: none)."""
    tid = uuid.UUID(str(tenant_id))
    row = session.execute(select(SendSettings).with_for_update()).scalar_one_or_none()
    old = load_settings(session)
    changed = {k: (v, getattr(new, k)) for k, v in asdict(old).items() if getattr(new, k) != v}
    if not changed:
        return changed
    if row is None:
        row = SendSettings(tenant_id=tid)
        session.add(row)
    for key, value in asdict(new).items():
        setattr(row, key, value)
    row.updated_by = uuid.UUID(actor.id) if actor.type == "user" and actor.id else None
    record(session, tid, actor, "sending.settings_changed", target_type="send_settings", target_id=tid,
           before={k: v[0] for k, v in changed.items()}, after={k: v[1] for k, v in changed.items()}, origin=origin)
    return changed
