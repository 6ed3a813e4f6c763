"""Sign-up, sign-in and sign-out pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, request, session, url_for
from flask_login import current_user, logout_user

from webapp.auth import audit, bp, limits, services, sessions
from webapp.auth.forms import LoginForm, SignupForm
from webapp.auth.limits import signup_limit
from webapp.auth.models import SecurityKind
from webapp.errors import Invalid
from webapp.htmx import render
from webapp.recovery import services as recovery


def safe_next(target: str | None, default: str) -> str:
    """Only a path on this site: no scheme, no host, no '//' or '/\\' tricks."""
    if not target or any(ch in target for ch in "\\\r\n\t") or not target.startswith("/"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in; then go back where the person was going."""
    next_url = safe_next(request.args.get("next"), url_for("registrations.dashboard"))
    if current_user.is_authenticated:
        return redirect(next_url, code=303)
    form = LoginForm()
    if form.validate_on_submit():
        signed = limits.sign_in(form.email.data, form.password.data, door="page")
        if signed.user is not None:
            sessions.start(signed.user, keep=form.remember.data)
            return limits.set_device_cookie(redirect(next_url, code=303), signed)
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
                                    tell_owner=True, origin=audit.Origin.of_request())
        except Invalid as exc:
            {"invalid_email": form.email, "invalid_name": form.name}.get(
                exc.code, form.password).errors.append(exc.message)
        else:
            if done.user is None or done.verification_sent:
                return render("recovery/check_email.html", address=done.address)
            sessions.start(done.user, keep=False)
            flash(f"Welcome to Turnout, {done.user.name}.", "success")
            return redirect(next_url, code=303)
    status = 422 if request.method == "POST" else 200
    return render("auth/signup.html", form=form, next_url=next_url, status=status)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """Sign out everywhere: every session cookie and API token of the person stops working.

    Only a POST does it (with its CSRF token, checked for every POST): a GET or HEAD,
    which a link, an image or a prefetch can make, only shows the question.
    """
    if request.method != "POST":  # GET, and HEAD (which Flask routes here as well)
        if not current_user.is_authenticated:
            return redirect(url_for("events.index"), code=303)
        return render("auth/logout.html")
    if current_user.is_authenticated:
        user_id = current_user.id
        services.sign_out_everywhere(user_id)
        audit.record(SecurityKind.SIGN_OUT, user_id=user_id, origin=audit.Origin.of_request(),
                     detail="page")
    logout_user()
    session.clear()
    flash("You are signed out on every device.", "info")
    return redirect(url_for("events.index"), code=303)
