"""Sign-in page and sign-out. (Emailed codes and SSO arrive with the sign-in issue.)"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required, logout_user

bp = Blueprint("auth", __name__)


@bp.get("/sign-in")
def sign_in():  # type: ignore[no-untyped-def]
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    return render_template("auth/sign_in.html", dev=current_app.config["BI"].is_development)


@bp.post("/sign-out")
@login_required
def sign_out():  # type: ignore[no-untyped-def]
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))
