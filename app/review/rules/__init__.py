"""Review rules: the sixteen checks of ``research/review-rules.md`` as pure functions (no database, no web).

``evaluate(payloads, settings, history)`` runs every enabled rule over one invoice's raw ConnectWise payloads
(``app.invoices.service.InvoicePayloads``) and returns ``Finding``s, each identified by (rule, target_type,
target_id). ``RULES`` describes the rules and their settings; ``default_settings`` and ``validate_settings`` own
the tenant's settings value; ``History`` (filled by ``build_history``) is what the agreement, usual-rate and
cross-invoice duplicate checks need beyond the one invoice. How unreadable records are treated: ``invoice``.
"""

from app.review.rules.catalog import RULES, default_settings, validate_settings
from app.review.rules.engine import evaluate
from app.review.rules.history import AgreementInvoice, History, build_history
from app.review.rules.model import SEVERITIES, TARGET_TYPES, Finding, RuleSpec, Setting, SettingsError

__all__ = [
    "RULES", "SEVERITIES", "TARGET_TYPES", "AgreementInvoice", "Finding", "History", "RuleSpec", "Setting",
    "SettingsError", "build_history", "default_settings", "evaluate", "validate_settings",
]
