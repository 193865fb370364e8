"""Invoice review: snapshots of open invoices, the sweep that takes them, rules, flags and their settings."""
