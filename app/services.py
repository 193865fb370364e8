"""The shared services as one typed value: built once in ``create_app`` and passed down explicitly.

Only entry points fetch it (views through ``current_services()``, the job wrapper, the CLIs and the factory through
``services_of(app)``); services and jobs take it, or just the piece they need, as arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Config
from app.observability.errors import ErrorReporter
from app.security.crypto import Keyring

EXTENSION = "services"
# (host, port) -> addresses, as app.connectwise.sites.resolve; typed loosely here because sites sits above us.
Resolver = Callable[[str, int], Any]


@dataclass(frozen=True)
class Services:
    """What every request, job and command shares; one per app."""

    config: Config
    engine: Engine
    session_factory: sessionmaker[Session]
    redis: Redis
    keyring: Keyring
    errors: ErrorReporter
    # The DNS resolver for ConnectWise site checks; None means the system's (tests inject their own).
    connectwise_resolver: Resolver | None = None


def services_of(app: Flask) -> Services:
    """The app's services (for entry points: the factory, job wrapper and CLIs)."""
    found = app.extensions.get(EXTENSION)
    if not isinstance(found, Services):
        raise RuntimeError("this app has no services: it was not made by create_app")
    return found


def current_services() -> Services:
    """The current app's services (for views and other request-time entry points)."""
    return services_of(current_app)
