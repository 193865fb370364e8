"""Self-serve sign-up pages ("Start free"): work email and code, or Google / Microsoft, then the workspace name."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("signup", __name__)


@bp.get("/start")
def start() -> str:
    return render_template("onboarding/start.html")
