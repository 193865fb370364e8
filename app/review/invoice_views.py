"""The invoice's review page (/review/<invoice>): the branded invoice from its snapshot, the flags pane,
the panels of reviewers, decision and activity, the changed-in-ConnectWise banner and its refresh."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("review_invoice", __name__, url_prefix="/review")
