"""Roles, their names and the permission matrix, in one place (the users page explains roles from it)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, request
from flask_login import current_user, login_required

from app.audit.web import audit_outside_request, current_actor
from app.tenancy import tenant_required

F = TypeVar("F", bound=Callable[..., Any])

# "support" is platform staff inside a tenant through a time-limited grant: enough to diagnose and fix settings,
# never users, billing, or approving more support access.
PERMISSIONS: dict[str, frozenset[str]] = {
    "connect_connectwise": frozenset({"owner", "admin", "support"}),
    # Which server receives the ConnectWise keys beyond ConnectWise's own cloud: the owner's call alone.
    "connectwise_hosts": frozenset({"owner"}),
    "branding": frozenset({"owner", "admin", "support"}),
    "review_rules": frozenset({"owner", "admin", "billing_manager", "support"}),
    # "Sweep now": reads ConnectWise on the tenant's request budget, so not for viewers.
    "run_sweep": frozenset({"owner", "admin", "billing_manager", "reviewer", "support"}),
    # Review storage on/off: what the Trust & Security page says customers ask us for ("contact us to disable this").
    "review_storage": frozenset({"support"}),
    "manage_reviewers": frozenset({"owner", "admin", "billing_manager"}),
    # Approve, reject, close, change an invoice's billing status: the review roles (not viewers, not support).
    "review_decide": frozenset({"owner", "admin", "billing_manager", "reviewer"}),
    # Edit an invoice's lines inline, written back to ConnectWise: the roles that decide on it (not viewers, not support).
    "review_edit": frozenset({"owner", "admin", "billing_manager", "reviewer"}),
    "send_emails": frozenset({"owner", "admin", "billing_manager"}),
    # Comment on an invoice's review (and mention people): the review roles, not viewers or support.
    "review_comment": frozenset({"owner", "admin", "billing_manager", "reviewer"}),
    "billing": frozenset({"owner"}),
    "users_and_roles": frozenset({"owner", "admin"}),
    "approve_support_access": frozenset({"owner"}),
    "sign_in_policy": frozenset({"owner"}),
    "view_audit_log": frozenset({"owner", "admin", "support"}),
    "view": frozenset({"owner", "admin", "billing_manager", "reviewer", "viewer", "support"}),
}


# Every role, most access first. ``no_access`` is in no permission's set: a listed person who cannot sign in (a
# member sync's new members, unless the owner chose a default role for them). "support" is staff, never assigned.
ROLE_LABELS: dict[str, str] = {
    "owner": "Owner", "admin": "Admin", "billing_manager": "Billing manager", "reviewer": "Reviewer",
    "viewer": "Viewer", "no_access": "No access",
}

# What each permission lets a person do, as the users page says it; a permission without a phrase fails a test.
PERMISSION_PHRASES: dict[str, str] = {
    "view": "see invoices, the review inbox and their public links",
    "run_sweep": "ask for a fresh read of open invoices",
    "review_decide": "approve or reject invoices in review",
    "review_edit": "edit invoice lines (written back to ConnectWise)",
    "review_comment": "comment on reviews",
    "manage_reviewers": "assign reviewers",
    "review_rules": "change review rules",
    "send_emails": "send invoices to clients",
    "branding": "change the branding",
    "connect_connectwise": "manage the ConnectWise connection and member sync",
    "connectwise_hosts": "allow an on-premises ConnectWise host",
    "view_audit_log": "read the audit log",
    "users_and_roles": "manage users and their roles",
    "billing": "manage this account's billing",
    "approve_support_access": "approve access for Better Invoice support",
    "sign_in_policy": "set the sign-in policy",
    "review_storage": "switch review storage on or off",
}


def permissions_of(role: str) -> list[str]:
    """The permissions ``role`` has, in the order the users page lists them."""
    return [name for name in PERMISSION_PHRASES if role in PERMISSIONS[name]]


def builds_on(role: str) -> str | None:
    """The next role down whose every permission ``role`` has too (its sentence then names only what it adds)."""
    order = list(ROLE_LABELS)
    below = order[order.index(role) + 1:] if role in order else []
    mine = set(permissions_of(role))
    for lower in below:
        theirs = set(permissions_of(lower))
        if theirs and theirs < mine:
            return lower
    return None


def _listed(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def role_sentence(role: str) -> str:
    """One sentence on what ``role`` may do, generated from PERMISSIONS so it cannot drift from them."""
    base = builds_on(role)
    if base is not None:
        added = [PERMISSION_PHRASES[name] for name in permissions_of(role) if name not in permissions_of(base)]
        article = "an" if ROLE_LABELS[base][0] in "AEIOU" else "a"
        return f"Everything {article} {ROLE_LABELS[base].lower()} may, and also {_listed(added)}."
    phrases = [PERMISSION_PHRASES[name] for name in permissions_of(role)]
    if not phrases:
        return "Listed here, but cannot sign in or see anything."
    return f"May {_listed(phrases)}."


def lost_permissions(old_role: str, new_role: str) -> list[str]:
    """What someone moving from ``old_role`` to ``new_role`` would no longer be allowed, as phrases."""
    kept = set(permissions_of(new_role))
    return [PERMISSION_PHRASES[name] for name in permissions_of(old_role) if name not in kept]


def can(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]


def current_user_can(permission: str) -> bool:
    """For templates: whether the signed-in principal's role has ``permission``."""
    return bool(current_user.is_authenticated and can(current_user.role, permission))


def permission_required(permission: str) -> Callable[[F], F]:
    """403 unless the signed-in user's role has ``permission``."""
    if permission not in PERMISSIONS:
        raise KeyError(permission)

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated or not can(current_user.role, permission):
                _audit_refusal(permission)
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_permission = permission  # type: ignore[attr-defined]  # read by the route-map test
        return wrapper  # type: ignore[return-value]

    return decorator


def permission_page(permission: str) -> Callable[[F], F]:
    """Sign-in, a tenant, and ``permission``: the stack every protected page needs, in that order."""
    check = permission_required(permission)

    def decorator(view: F) -> F:
        wrapped = login_required(tenant_required(check(view)))
        wrapped.required_permission = permission
        return wrapped

    return decorator


def _audit_refusal(permission: str) -> None:
    """A refused authorization is audited in the user's tenant, committed even though the answer is 403."""
    tenant_id = getattr(current_user, "tenant_id", None) if current_user.is_authenticated else None
    if tenant_id is None:
        return
    audit_outside_request(tenant_id, current_actor(), "auth.forbidden", target_type="endpoint", target_id=request.endpoint or "",
                          after={"permission": permission, "role": current_user.role, "method": request.method})
