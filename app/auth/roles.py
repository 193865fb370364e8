"""Roles and the permission matrix, in one place."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user

F = TypeVar("F", bound=Callable[..., Any])

PERMISSIONS: dict[str, frozenset[str]] = {
    "connect_connectwise": frozenset({"owner", "admin"}),
    "branding": frozenset({"owner", "admin"}),
    "review_rules": frozenset({"owner", "admin", "billing_manager"}),
    "manage_reviewers": frozenset({"owner", "admin", "billing_manager"}),
    "send_emails": frozenset({"owner", "admin", "billing_manager"}),
    "billing": frozenset({"owner"}),
    "users_and_roles": frozenset({"owner", "admin"}),
    "approve_support_access": frozenset({"owner"}),
    "view_audit_log": frozenset({"owner", "admin"}),
    "view": frozenset({"owner", "admin", "billing_manager", "reviewer", "viewer"}),
}


def can(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]


def permission_required(permission: str) -> Callable[[F], F]:
    """403 unless the signed-in user's role has ``permission``."""
    if permission not in PERMISSIONS:
        raise KeyError(permission)

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated or not can(current_user.role, permission):
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def permission_page(permission: str) -> Callable[[F], F]:
    """Sign-in, a tenant, and ``permission``: the stack every protected page needs, in that order."""
    from flask_login import login_required

    from app.tenancy import tenant_required

    check = permission_required(permission)

    def decorator(view: F) -> F:
        return login_required(tenant_required(check(view)))  # type: ignore[return-value]

    return decorator
