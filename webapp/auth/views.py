"""Sign-up, sign-in and sign-out pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from webapp.auth import bp, services
from webapp.auth.audit import Origin
from webapp.auth.forms import LoginForm, SignupForm
from webapp.auth.limits import login_account_key, login_limits
from webapp.errors import Invalid
from webapp.htmx import render
from webapp.recovery import services as recovery
from webapp.recovery.limits import signup_limit


def safe_next(target: str | None, default: str) -> str:
    """Only a path on this site: no scheme, no host, no '//' or '/\\' tricks."""
    if not target or any(ch in target for ch in "\\\r\n\t") or not target.startswith("/"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return default
    return target


def _login_account_key() -> str:
    return login_account_key(request.form.get("email"))




@bp.route("/login", methods=["GET", "POST"])
@login_limits(_login_account_key, methods=["POST"])
def login():
    """Sign in; then go back where the person was going."""
    next_url = safe_next(request.args.get("next"), url_for("registrations.dashboard"))
    if current_user.is_authenticated:
        return redirect(next_url, code=303)
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is not None:
            session.clear()  # a fresh session at sign-in (no fixation)
            login_user(user, remember=form.remember.data)
            return redirect(next_url, code=303)
        form.password.errors.append("Wrong email or password.")
    status = 422 if request.method == "POST" else 200
    return render("auth/login.html", form=form, next_url=next_url, status=status)


@bp.route("/signup", methods=["GET", "POST"])
@signup_limit(methods=["POST"])
def signup():
    """Create an account and sign straight in, or, with REQUIRE_EMAIL_VERIFICATION, ask
    the person to open the link we emailed. The answer never confirms that an address
    already has an account: its owner is told by email instead."""
    next_url = safe_next(request.args.get("next"), url_for("registrations.dashboard"))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            done = recovery.sign_up(form.email.data, form.name.data, form.password.data,
                                    tell_owner=True, origin=Origin.of_request())
        except Invalid as exc:
            {"invalid_email": form.email, "invalid_name": form.name}.get(
                exc.code, form.password).errors.append(exc.message)
        else:
            if done.user is None or done.verification_sent:
                return render("recovery/check_email.html", address=done.address)
            session.clear()
            login_user(done.user)
            flash(f"Welcome to Turnout, {done.user.name}.", "success")
            return redirect(next_url, code=303)
    status = 422 if request.method == "POST" else 200
    return render("auth/signup.html", form=form, next_url=next_url, status=status)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """Sign out here and everywhere: older session cookies stop working.

    A GET from another site (a link, an image, a navigation) only asks first:
    browsers say so in Sec-Fetch-Site. Our own pages and scripts sign out directly.
    """
    cross_site = request.headers.get("Sec-Fetch-Site", "same-origin") not in (
        "same-origin", "none")
    if request.method == "GET" and cross_site and current_user.is_authenticated:
        return render("auth/logout.html")
    if current_user.is_authenticated:
        services.sign_out_everywhere(current_user.id)
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("events.index"), code=303)
