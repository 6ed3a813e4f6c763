"""Pages: forgot and reset a password, follow a verification link, ask for a new one."""

from __future__ import annotations

from flask import flash, redirect, request, session, url_for
from flask_login import current_user, login_required, logout_user

from webapp.auth.audit import Origin
from webapp.auth.limits import forgot_limit
from webapp.auth.links import InvalidLink
from webapp.errors import Invalid
from webapp.htmx import render
from webapp.recovery import bp, services
from webapp.recovery.forms import ForgotForm, ResetForm

PASSWORD_CHANGED = "Your password was changed; sign in with your new password."  # noqa: S105


@bp.route("/password/forgot", methods=["GET", "POST"])
@forgot_limit(methods=["POST"])
def forgot():
    """Ask for a reset link. The answer is the same whether or not the address has an
    account, and whether or not its emails were throttled."""
    form = ForgotForm()
    if form.validate_on_submit():
        services.ask_password_reset(form.email.data, origin=Origin.of_request())
        return render("recovery/forgot_sent.html", address=" ".join(form.email.data.split()))
    status = 422 if request.method == "POST" else 200
    return render("recovery/forgot.html", form=form, status=status)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    """Choose a new password with the emailed link; then sign in with it."""
    form = ResetForm()
    if request.method == "GET":
        try:
            services.reset_link_owner(token)
        except InvalidLink as exc:
            return _invalid_link(exc)
        return render("recovery/reset.html", form=form, token=token)
    if form.validate_on_submit():
        try:
            services.reset_password(token, form.password.data, origin=Origin.of_request())
        except InvalidLink as exc:
            return _invalid_link(exc)
        except Invalid as exc:
            form.password.errors.append(exc.message)
        else:
            # Every session of the person ended with the reset; this browser's too.
            logout_user()
            session.clear()
            flash(PASSWORD_CHANGED, "success")
            return redirect(url_for("auth.login"), code=303)
    return render("recovery/reset.html", form=form, token=token, status=422)


def _invalid_link(exc: InvalidLink):
    return render("recovery/invalid_link.html", message=exc.message,
                  again_url=url_for("recovery.forgot"), status=400)


@bp.get("/verify/<token>")
def verify(token: str):
    """Follow the verification link: the address is confirmed (a second visit too)."""
    try:
        user = services.verify_email(token, origin=Origin.of_request())
    except InvalidLink:
        return render("recovery/invalid_link.html",
                      message="This confirmation link is not valid any more. Sign in and "
                              "ask for a new one.",
                      again_url=None, status=400)
    return render("recovery/verified.html", user=user)


@bp.post("/verify/resend")
@login_required
def resend_verification():
    """Send the verification link again, then back to the page the person was on."""
    from webapp.auth.views import safe_next  # auth.views imports this package

    back = safe_next(request.form.get("next"), url_for("registrations.dashboard"))
    if services.send_verification_again(current_user.id) is None:
        flash("Your email address is already confirmed.", "info")
    else:  # sent, or held back by the per-address limit: the last links still work
        flash(f"We sent a new link to {current_user.email}. It may take a minute to arrive.",
              "info")
    return redirect(back, code=303)
