"""Audit rows as sentences for people: every action name the code writes maps to one here ("Olive Owner approved
invoice 10234", "Member sync added 3 users"); an action without one still reads ("Olive Owner did review foo on
invoice 10234"). Invoices are named by number when the row (or the page's one lookup) knows it, else "invoice #id".

Output is plain text: the template escapes it like any other value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class AuditRow(Protocol):
    actor_type: str
    actor_id: str | None
    actor_label: str
    action: str
    target_type: str
    target_id: str
    before: dict | None
    after: dict | None


@dataclass(frozen=True)
class Context:
    """What the page looked up once for all its rows: people's names by user id, invoice numbers by invoice id."""

    people: Mapping[str, str] = field(default_factory=dict)
    invoice_numbers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Line:
    sentence: str
    details: tuple[str, ...] = ()


# How a changed field is named in a sentence; any other key reads as its words ("page_size" -> "page size").
FIELD_WORDS = {
    "brand_colour": "brand colour", "accent_colour": "accent colour", "logo_sha256": "logo", "timezone": "time zone",
    "new_member_role": "role for new members", "require_sso": "SSO requirement", "cw_member_id": "ConnectWise member",
    "support_access_requires_approval": "approval for support access", "review_storage_enabled": "review storage",
    "company_id": "company", "site": "ConnectWise site", "public_key": "public key", "private_key": "private key",
}
# The system actors by the labels the code gives them.
_SYSTEM_NAMES = {"system": "The system", "cli": "An operator (command line)", "connectwise member sync": "Member sync",
                 "review write-back": "Review write-back", "sign-in": "Sign-in", "support access": "Support access",
                 "sign-up": "Sign-up"}
# Keys that identify rather than change something: left out of the "changed X from A to B" details.
_QUIET = {"invoice_id", "invoice_number", "send_id", "batch_id", "event_id", "link_ids", "saved", "changed_keys"}


def _words(key: str) -> str:
    return FIELD_WORDS.get(key, key.replace("time_detail.", "time detail ").replace("_", " "))


def _value(value: Any) -> str:
    if value is None or value == "":
        return "none"
    if value is True:
        return "on"
    if value is False:
        return "off"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{_words(str(k))} {_value(v)}" for k, v in value.items()) or "none"
    text = str(value).replace("_", " ") if isinstance(value, str) and value.islower() else str(value)
    return text if len(text) <= 120 else text[:119] + "…"


def _plural(n: Any, one: str, many: str | None = None) -> str:
    try:
        count = int(n)
    except (TypeError, ValueError):
        return f"{n} {many or one + 's'}"
    return f"{count} {one if count == 1 else (many or one + 's')}"


def actor_name(actor_type: str, label: str) -> str:
    """Support staff and system actors as people read them ("Member sync", "Better Invoice support (…)")."""
    if actor_type == "support":
        return f"Better Invoice support ({label})" if label else "Better Invoice support"
    if actor_type == "user":
        return label or "Someone"
    label = label or "system"
    return _SYSTEM_NAMES.get(label, label[:1].upper() + label[1:])


class _Row:
    """One row with its context: the words a sentence needs."""

    def __init__(self, row: AuditRow, ctx: Context) -> None:
        self.row, self.ctx = row, ctx
        self.before: dict[str, Any] = row.before if isinstance(row.before, dict) else {}
        self.after: dict[str, Any] = row.after if isinstance(row.after, dict) else {}

    @property
    def who(self) -> str:
        r = self.row
        if r.actor_type == "user":
            return self.ctx.people.get(r.actor_id or "") or r.actor_label or "Someone"
        return actor_name(r.actor_type, r.actor_label)

    def get(self, key: str, default: Any = "") -> Any:
        return self.after.get(key, self.before.get(key, default))

    def invoice(self) -> str:
        """The invoice the row is about, by number when known."""
        number = self.get("invoice_number")
        invoice_id = self.get("invoice_id") or (self.row.target_id if self.row.target_type == "invoice" else "")
        if not number and invoice_id:
            number = self.ctx.invoice_numbers.get(str(invoice_id), "")
        if number:
            return f"invoice {number}"
        return f"invoice #{invoice_id}" if invoice_id else "an invoice"

    def user(self) -> str:
        """The person a user row is about (their name or email, from the row or the page's lookup)."""
        if self.row.target_type != "user":
            return "a user"
        name = self.ctx.people.get(self.row.target_id, "")
        return name or self.get("name") or self.get("email") or "a user"

    def target(self) -> str:
        r = self.row
        if r.target_type == "invoice" or self.get("invoice_id") or self.get("invoice_number"):
            return self.invoice()
        if r.target_type == "user":
            return self.user()
        if r.target_type:
            return _words(r.target_type)
        return "the account"

    def changes(self) -> tuple[str, ...]:
        """"<field>: A → B" for every key that changed (identifying keys left out)."""
        keys = [k for k in dict.fromkeys([*self.before, *self.after]) if k not in _QUIET]
        out = []
        for k in keys:
            if k in self.before and k in self.after:
                out.append(f"{_words(k)}: {_value(self.before[k])} → {_value(self.after[k])}")
            else:
                out.append(f"{_words(k)}: {_value(self.after.get(k, self.before.get(k)))}")
        return tuple(out)

    def changed(self, what: str) -> Line:
        """"<who> changed the <field> from A to B" for one change, else "<who> changed <what>" with the list."""
        keys = [k for k in self.after if k not in _QUIET and self.before.get(k) != self.after.get(k)]
        if len(keys) == 1 and keys[0] in self.before:
            k = keys[0]
            return Line(f"{self.who} changed the {_words(k)} from {_value(self.before[k])} to "
                        f"{_value(self.after[k])}")
        if len(keys) == 1:
            return Line(f"{self.who} set the {_words(keys[0])} to {_value(self.after[keys[0]])}")
        return Line(f"{self.who} changed {what}", self.changes())


Sentence = Callable[[_Row], Line | str]


def _connection_saved(r: _Row) -> Line | str:
    """Which keys changed is a list of names ("public, private"), never values: it reads as words, not a change."""
    keys = [k for k in str(r.after.get("changed_keys") or "").split(", ") if k]
    replaced = " and ".join(keys)
    if not any(k not in _QUIET and r.before.get(k) != v for k, v in r.after.items()):
        if not keys:
            return f"{r.who} saved the ConnectWise connection without changes"
        return f"{r.who} replaced the ConnectWise {replaced} key{'s' if len(keys) > 1 else ''}"
    line = r.changed("the ConnectWise connection")
    if keys:
        return Line(f"{line.sentence}, and replaced the {replaced} key{'s' if len(keys) > 1 else ''}", line.details)
    return line


def _s(template: str) -> Sentence:
    """A sentence from a template with {who}, {invoice}, {user}, {target} and the row's own keys as {key}."""
    def build(r: _Row) -> str:
        values = _SafeDict({**{k: _value(v) for k, v in {**r.before, **r.after}.items()}})
        values.update(who=r.who, invoice=r.invoice(), user=r.user(), target=r.target())
        return template.format_map(values)
    return build


class _SafeDict(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _synced(r: _Row) -> Line:
    a = r.after
    parts = [f"added {_plural(a.get('created', 0), 'user')}"]
    if a.get("updated"):
        parts.append(f"updated {_plural(a['updated'], 'user')}")
    if a.get("deactivated"):
        parts.append(f"took sign-in away from {_plural(a['deactivated'], 'user')}")
    if a.get("proposed"):
        parts.append(f"proposed {_plural(a['proposed'], 'email change')}")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return Line(f"{r.who} {listed}", (f"{_plural(a.get('members', 0), 'ConnectWise member')} read",))


def _signed_in(r: _Row) -> str:
    method = {"email_code": "with an emailed code", "break_glass": "with a break-glass code",
              "sso_google": "with Google", "sso_microsoft": "with Microsoft"}.get(str(r.get("method")), "")
    return f"{r.who} signed in {method}".rstrip()


def _signed_up(r: _Row) -> Line:
    method = {"email_code": "with an emailed code", "sso_google": "with Google",
              "sso_microsoft": "with Microsoft"}.get(str(r.get("method")), "")
    details = ("a personal email address",) if r.get("free_mail") else ()
    return Line(f"{r.who} signed up {method} and started the Pro trial".replace("  ", " "), details)


def _day(value: Any) -> str:
    """An ISO timestamp from a billing row as its date ("2026-11-03"); anything else as a value."""
    return value[:10] if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" else _value(value)


def _plan_words(plan: Any, interval: Any) -> str:
    name = {"pro": "Pro", "free": "Free"}.get(str(plan), _value(plan))
    return f"{name} ({interval}ly)" if interval in ("month", "year") else name


def _billing_details(r: _Row) -> tuple[str, ...]:
    """"<field>: A → B" for a billing row, dates as dates."""
    words = {"status": "status", "current_period_end": "current period ends", "trial_ends_at": "trial ends",
             "cancel_at_period_end": "cancels at the period's end", "stripe_subscription_id": "Stripe subscription"}
    return tuple(f"{words.get(k, _words(k))}: {_day(r.before.get(k))} → {_day(r.after.get(k))}"
                 for k in dict.fromkeys([*r.before, *r.after]))


def _plan_changed(r: _Row) -> Line:
    was = _plan_words(r.before.get("plan", r.after.get("plan")), r.before.get("billing_interval"))
    now = _plan_words(r.after.get("plan", r.before.get("plan")), r.after.get("billing_interval"))
    return Line(f"{r.who} changed the plan from {was} to {now}")


def _forbidden(r: _Row) -> Line:
    return Line(f"{r.who} was refused a page or action their role does not allow",
                (f"needs: {_words(str(r.get('permission')))}", f"role: {_value(r.get('role'))}",
                 f"where: {r.row.target_id}"))


def _send_queued(r: _Row) -> Line:
    kind = "a reminder for" if r.get("kind") == "reminder" else ""
    recipients = r.get("recipients")
    tail = f" to {_plural(recipients, 'recipient')}" if recipients else ""
    return Line(f"{r.who} sent {kind} {r.invoice()}{tail}".replace("  ", " "))


def _line_edited(r: _Row) -> Line:
    field_name = _words(str(r.get("field")))
    forced = " (over a newer ConnectWise change)" if r.after.get("forced") else ""
    return Line(f"{r.who} changed the {field_name} of a line on {r.invoice()} from "
                f"{_value(r.before.get('value'))} to {_value(r.after.get('value'))}{forced}")


def _commented(r: _Row) -> Line:
    mentions = r.after.get("mentions") or []
    return Line(f"{r.who} commented on {r.invoice()}",
                (f"mentioned {_plural(len(mentions), 'person', 'people')}",) if mentions else ())


def _member(verb: str) -> Sentence:
    def build(r: _Row) -> Line:
        return Line(f"Member sync {verb} {r.user()}" if r.who == "Member sync" else f"{r.who} {verb} {r.user()}",
                    r.changes())
    return build


SENTENCES: dict[str, Sentence] = {
    # Sign-in and sessions
    "auth.signed_in": _signed_in,
    "auth.signed_out": _s("{who} signed out"),
    "auth.sessions_ended": _s("{who} signed out their other sessions ({ended})"),
    "auth.forbidden": _forbidden,
    "auth.code_failed": _s("A wrong sign-in code was typed for {target}"),
    "auth.code_sign_in_paused": _s("Emailed sign-in codes were paused for {target} after too many wrong codes"),
    "auth.break_glass": _s("{who} signed in with a break-glass code while SSO is required"),
    "auth.sso_linked": _s("{who} linked a single sign-on account"),
    "settings.sign_in_policy": lambda r: r.changed("the sign-in policy"),
    # The workspace
    "tenant.created": _s("{who} created the account {name}"),
    "tenant.signed_up": _signed_up,
    "workspace.settings_changed": lambda r: r.changed("the workspace settings"),
    "branding.saved": lambda r: (Line(f"{r.who} saved the branding") if r.after.get("saved")
                                 else r.changed("the branding")),
    # Users
    "user.added": _s("{who} added {user} as {role}"),
    "user.role_changed": lambda r: Line(f"{r.who} changed {r.user()}'s role from {_value(r.before.get('role'))} "
                                        f"to {_value(r.after.get('role'))}"),
    "user.deactivated": _s("{who} took sign-in away from {user}"),
    "user.reactivated": _s("{who} gave {user} sign-in access again"),
    "user.email_change_accepted": _s("{who} accepted ConnectWise's new email for {user}"),
    "user.email_change_rejected": _s("{who} kept {user}'s email instead of ConnectWise's"),
    "users.new_member_role_changed": lambda r: r.changed("the role for new members"),
    "tenant.new_member_role_changed": lambda r: r.changed("the role for new members"),
    # ConnectWise
    "connectwise.connected": _s("{who} connected ConnectWise"),
    "connectwise.connection_saved": lambda r: _connection_saved(r),
    "connectwise.site_changed": lambda r: r.changed("the ConnectWise site"),
    "connectwise.onprem_host_added": _s("{who} allowed the on-premises ConnectWise host {host}"),
    "connectwise.onprem_host_removed": _s("{who} removed the on-premises ConnectWise host {host}"),
    "connectwise.members_synced": _synced,
    "connectwise.member_created": _member("added"),
    "connectwise.member_updated": _member("updated"),
    "connectwise.member_deactivated": _member("took sign-in away from"),
    "connectwise.member_reactivated": _member("gave sign-in access back to"),
    "connectwise.email_change_proposed": _s("Member sync proposed a new email for {user}"),
    "connectwise.email_change_updated": _s("Member sync updated the proposed email for {user}"),
    "connectwise.email_change_withdrawn": _s("Member sync withdrew the proposed email for {user}"),
    # Invoices and sending
    "invoices.public_link_created": _s("{who} created a public link for {invoice}"),
    "invoices.public_link_revoked": _s("{who} revoked a public link for {invoice}"),
    "invoices.public_links_revoked_all": lambda r: Line(f"{r.who} revoked {_plural(r.get('revoked'), 'public link')}"
                                                        f" for {r.invoice()}"),
    "invoice.send_queued": _send_queued,
    "invoice.sent": lambda r: Line(f"{r.invoice()[:1].upper()}{r.invoice()[1:]} was "
                                   f"{'reminded' if r.get('kind') == 'reminder' else 'sent'} to "
                                   f"{_plural(r.get('recipients') or 1, 'recipient')}"),
    "invoice.send_skipped": lambda r: Line(f"Sending {r.invoice()} was skipped", (f"why: {r.get('reason')}",)),
    "invoice.send_failed": lambda r: Line(f"Sending {r.invoice()} failed", (f"why: {r.get('reason')}",)),
    "invoice.sent_status_failed": lambda r: Line(f"{r.invoice()[:1].upper()}{r.invoice()[1:]} was sent, but its "
                                                 "Sent status could not be set in ConnectWise",
                                                 (f"why: {r.get('reason')}",)),
    "invoice.bulk_send_started": lambda r: Line(f"{r.who} started sending {_plural(r.get('invoices'), 'invoice')}"),
    "sending.settings_changed": lambda r: r.changed("the send settings"),
    # Review
    "review.approved": _s("{who} approved {invoice}"),
    "review.approval_undone": _s("{who} undid the approval of {invoice}"),
    "review.rejected": _s("{who} rejected {invoice}"),
    "review.closed": _s("{who} closed the review of {invoice}"),
    "review.status_changed": lambda r: Line(f"{r.who} changed the billing status of {r.invoice()}", r.changes()),
    "review.commented": _commented,
    "review.line_edited": _line_edited,
    "review.flag_marked_ok": _s("{who} marked a flag on {invoice} as fine"),
    "review.flag_unmarked": _s("{who} took back marking a flag on {invoice} as fine"),
    "review.reviewer_added": _s("{who} added a reviewer to {invoice}"),
    "review.reviewer_removed": _s("{who} removed a reviewer from {invoice}"),
    "review.reviewers_seeded": _s("{who} assigned reviewers to {invoice} by the routing rules"),
    "review.guest_link_created": _s("{who} invited a guest reviewer to {invoice}"),
    "review.guest_link_days_changed": lambda r: r.changed("how long guest review links last"),
    "review.guest_link_revoked": _s("{who} revoked a guest reviewer's link to {invoice}"),
    "review.rules_changed": lambda r: r.changed("the review rules"),
    "review.status_map_changed": lambda r: r.changed("which ConnectWise statuses a decision sets"),
    "review.storage_changed": lambda r: r.changed("review storage"),
    "review.callbacks_register_requested": _s("{who} asked ConnectWise to tell us about invoice changes"),
    "review.callbacks_registered": _s("ConnectWise now tells us about invoice changes"),
    "review.callbacks_removed": _s("ConnectWise no longer tells us about invoice changes"),
    "review.writeback_succeeded": _s("The decision on {invoice} was written back to ConnectWise"),
    "review.writeback_failed": _s("Writing the decision on {invoice} back to ConnectWise failed"),
    "review.writeback_conflict": _s("Writing the decision on {invoice} back to ConnectWise stopped: "
                                    "it changed in ConnectWise meanwhile"),
    "review.writeback_forced": _s("{who} wrote the decision on {invoice} over ConnectWise's change"),
    "review.writeback_kept_theirs": _s("{who} kept ConnectWise's change on {invoice} instead of the decision"),
    "review.writeback_retried": _s("{who} tried writing the decision on {invoice} back to ConnectWise again"),
    # Billing
    "billing.plan_changed": _plan_changed,
    "billing.subscription_changed": lambda r: Line(f"{r.who} updated the subscription", _billing_details(r)),
    "billing.payment_failed": lambda r: Line(f"A payment failed in Stripe: Pro stays until "
                                             f"{_day(r.after.get('grace_ends_at'))}, then Free limits apply"),
    "billing.payment_succeeded": _s("A payment went through in Stripe after a failed one: the grace period ended"),
    "billing.checkout_started": lambda r: Line(f"{r.who} went to Stripe Checkout to upgrade to Pro, billed "
                                               f"{'yearly' if r.get('interval') == 'year' else 'monthly'}"),
    "billing.portal_opened": _s("{who} opened Stripe's billing portal"),
    # Support access
    "settings.support_access": lambda r: r.changed("the support access settings"),
    "support.requested": _s("Better Invoice support ({staff}) asked for access"),
    "support.opened": _s("Better Invoice support ({staff}) opened the account"),
    "support.approved": _s("{who} let Better Invoice support ({staff}) in"),
    "support.granted_without_approval": _s("Better Invoice support ({staff}) got access (no approval needed)"),
    "support.denied": _s("{who} turned down Better Invoice support's request for access"),
    "support.ended": _s("{who} ended Better Invoice support's access"),
    "support.expired": _s("Better Invoice support's access expired"),
    "support.left": _s("{who} left the account"),
    "support.action": lambda r: Line(f"{r.who} made a change as support staff", r.changes()),
}


def sentence(row: AuditRow, ctx: Context | None = None) -> Line:
    """The row as a sentence for people, with the details that do not fit in it."""
    r = _Row(row, ctx or Context())
    build = SENTENCES.get(row.action)
    if build is None:
        return Line(fallback_sentence(r), r.changes())
    out = build(r)
    return out if isinstance(out, Line) else Line(out)


def fallback_sentence(r: _Row) -> str:
    """"<who> did <action words> on <target>": for actions no sentence knows yet."""
    words = r.row.action.replace(".", " ").replace("_", " ").strip() or "something"
    return f"{r.who} did {words} on {r.target()}"


def action_label(action: str) -> str:
    """The action as words for the filter list ("review.approved" -> "Review: approved")."""
    area, _, rest = action.partition(".")
    return f"{area.replace('_', ' ').capitalize()}: {rest.replace('_', ' ')}" if rest else action
