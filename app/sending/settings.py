"""The workspace's send settings: what is stored on ``send_settings`` and the defaults when nothing is."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.sending.models import SendSettings

DEFAULT_SUBJECT = "Invoice {number} from {sender}"
DEFAULT_BODY = ("Hello {client_name},\n\n"
                "Your invoice {number} for {amount_due} is due on {due_date}.\n"
                "You can view and download it here: {link}\n\n"
                "Thank you,\n{sender}")
DEFAULT_REMINDER_SUBJECT = "Reminder: invoice {number} from {sender}"
DEFAULT_REMINDER_BODY = ("Hello {client_name},\n\n"
                         "This is a reminder that invoice {number} has {amount_due} outstanding, due on {due_date}.\n"
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
