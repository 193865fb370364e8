"""Decision routes: approve, undo, reject, close, change status, retry a write-back, and bulk approve."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("review_decisions", __name__, url_prefix="/review")
