"""The dashboard's onboarding checklist: connect ConnectWise, sync members, brand the invoices, run the first review
sweep, invite a colleague. Each step ticks itself from what is stored (no ConnectWise call): a saved connection whose
last "Test connection" passed, a member sync that ended well, a saved branding, a sweep that finished, a second person
who can sign in. The list is gone once every step is done.

It cannot be dismissed: each step is something the product needs to do its job (no connection, no invoices; no
sweep, no review), it goes away by itself when done, and hiding it would need a stored flag for a one-time nuisance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.branding.models import BrandingSettings
from app.connectwise.connection import get_connection
from app.connectwise.models import MemberSync
from app.review.models import Sweep
from app.users.models import User

NO_ACCESS = "no_access"


@dataclass(frozen=True)
class Step:
    """One step: whether it is done, what to do (or what was done), and the page that does it."""

    key: str
    title: str
    detail: str
    done: bool
    endpoint: str  # the page's Flask endpoint
    anchor: str  # where on that page ("" for its top)
    action: str  # the link's words
    permission: str  # who may open that page (app.auth.roles)
    at: dt.datetime | None = None  # when it was done, where we know


@dataclass(frozen=True)
class Checklist:
    steps: tuple[Step, ...]

    @property
    def done_count(self) -> int:
        return sum(step.done for step in self.steps)

    @property
    def complete(self) -> bool:
        return all(step.done for step in self.steps)

    @property
    def next_step(self) -> Step | None:
        """The first step not done: the one the page puts forward."""
        return next((step for step in self.steps if not step.done), None)


def checklist(session: Session) -> Checklist:
    """The current tenant's checklist, from its own tables."""
    return Checklist((_connect(session), _members(session), _branding(session), _sweep(session),
                      _colleague(session)))


def _connect(session: Session) -> Step:
    conn = get_connection(session)
    done = conn is not None and conn.last_test_ok is True
    if conn is None:
        detail = ("Enter your ConnectWise site, company id and an API member's keys. The page lists the permissions "
                  "the member's security role needs, module by module.")
    elif conn.last_test_ok is None:
        detail = "Saved. Run “Test connection” to check the keys and each permission."
    elif not done:
        detail = "The last “Test connection” found a problem: its report says which permission is missing."
    else:
        detail = "Connected, and the last “Test connection” passed."
    return Step("connect", "Connect ConnectWise", detail, done, "connectwise.settings", "",
                "Open ConnectWise settings" if conn else "Connect ConnectWise", "connect_connectwise",
                conn.last_test_at if conn is not None else None)


def _members(session: Session) -> Step:
    sync = session.execute(select(MemberSync)).scalar_one_or_none()
    done = sync is not None and sync.status == "ok"
    if done:
        detail = "Your ConnectWise members are people here; they sync again every few hours."
    elif sync is not None and sync.status == "failed":
        detail = f"The last sync failed: {sync.error or 'no reason given'}."
    elif sync is not None and sync.status in ("queued", "running"):
        detail = "A sync is running."
    else:
        detail = "Bring your ConnectWise members in as people here; you choose what each may do."
    return Step("members", "Sync members", detail, done, "connectwise.settings", "members", "Sync members",
                "connect_connectwise", sync.finished_at if done and sync is not None else None)


def _branding(session: Session) -> Step:
    # The row is made by the first save (no row: the default branding).
    row = session.execute(select(BrandingSettings.updated_at, BrandingSettings.logo_sha256)).first()
    done = row is not None
    detail = ("Saved. Your logo, colours and wording are on every invoice page, PDF and public link." if done else
              "Add your logo, colours and wording, with a live preview on your newest invoice.")
    return Step("branding", "Brand your invoices", detail, done, "branding.editor", "", "Brand your invoices",
                "branding", row.updated_at if row is not None else None)


def _sweep(session: Session) -> Step:
    finished = session.execute(select(func.min(Sweep.finished_at))
                               .where(Sweep.outcome == "ok", Sweep.finished_at.is_not(None))).scalar()
    done = finished is not None
    detail = ("Your open invoices are in the review; it sweeps them again every few minutes." if done else
              "Pull your open invoices into the review and see what the rules flag before they go out.")
    return Step("sweep", "Run the first review sweep", detail, done, "review.index", "", "Open the review",
                "run_sweep", finished)


def _colleague(session: Session) -> Step:
    can_sign_in = session.execute(select(func.count()).select_from(User)
                                  .where(User.active, User.role != NO_ACCESS)).scalar_one()
    done = can_sign_in > 1
    detail = (f"{can_sign_in} people can sign in to this workspace." if done else
              "Add a colleague by email and choose their role, or give a synced member a role.")
    return Step("colleague", "Invite a colleague", detail, done, "users.index", "add-user", "Add a colleague",
                "users_and_roles")
