"""Sending invoices to clients: compose, send (one mail job per message), delivery events, bulk sends, reminders."""
