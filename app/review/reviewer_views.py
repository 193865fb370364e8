"""Reviewer routes: add and remove an invoice's reviewers (manage_reviewers), the people picker."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("review_reviewers", __name__, url_prefix="/review")
