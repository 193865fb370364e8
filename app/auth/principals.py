"""Principals: whoever a session belongs to, and the registry of loaders that turn a session's key back into one.

A session names its principal by a key (``get_id()``). A workspace user's key is ``<tenant id>:<user id>`` and auth
loads it itself; every other kind of principal has a key ``<kind>:...`` and the package that owns that kind registers
its loader (support staff through a grant: ``support``; review's guests later), so auth imports none of them.

A loader only reads: it never sets the request's tenant. That happens once, after loading, in
``app.auth.sessions`` (so nothing a loader does can decide which tenant a later step of the request runs for).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Protocol

from flask import Flask, current_app

EXTENSION = "principal_loaders"
_KIND = re.compile(r"[a-z][a-z_]{1,30}")
_HEX = re.compile(r"[0-9a-f]+")


class Principal(Protocol):
    """What the rest of the app relies on: Flask-Login's user protocol, a role, and the tenant it acts in."""

    @property
    def tenant_id(self) -> uuid.UUID | None: ...

    @property
    def role(self) -> str: ...

    @property
    def is_authenticated(self) -> bool: ...

    def get_id(self) -> str: ...


PrincipalLoader = Callable[[str], Principal | None]


class PrincipalLoaders:
    """Loaders by key kind; a key without a registered kind is a workspace user's."""

    def __init__(self, users: PrincipalLoader) -> None:
        self._users = users
        self._by_kind: dict[str, PrincipalLoader] = {}

    def register(self, kind: str, loader: PrincipalLoader) -> None:
        # A kind made of hex digits could be the first part of a user's tenant id, and would steal its keys.
        if not _KIND.fullmatch(kind) or _HEX.fullmatch(kind):
            raise ValueError(f"principal kind {kind!r}: lower-case letters and underscores, not only hex digits")
        if kind in self._by_kind:
            raise ValueError(f"principal kind {kind!r} has a loader already")
        self._by_kind[kind] = loader

    def load(self, key: str) -> Principal | None:
        """The principal ``key`` names, or None (unknown kind of key, gone, inactive, expired)."""
        kind, sep, _rest = key.partition(":")
        if sep and kind in self._by_kind:
            return self._by_kind[kind](key)
        return self._users(key)


def install_principal_loaders(app: Flask, users: PrincipalLoader) -> PrincipalLoaders:
    loaders = PrincipalLoaders(users)
    app.extensions[EXTENSION] = loaders
    return loaders


def register_principal_loader(app: Flask, kind: str, loader: PrincipalLoader) -> None:
    """Let sessions whose key starts with ``<kind>:`` load through ``loader`` (call from the factory or an init)."""
    if EXTENSION not in app.extensions:
        raise RuntimeError("principal loaders are installed by init_login; register after it")
    app.extensions[EXTENSION].register(kind, loader)


def load_principal(key: str) -> Principal | None:
    """What Flask-Login calls with the session's key."""
    return current_app.extensions[EXTENSION].load(key)
