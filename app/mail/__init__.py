"""Outgoing mail: one Message type and one send(), through Mailgun (official SDK) or a development outbox."""
