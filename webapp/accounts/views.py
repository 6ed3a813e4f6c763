"""The account page: change password, download my data, delete my account."""

from __future__ import annotations

from flask import flash, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from webapp.accounts import bp, services
from webapp.accounts.forms import ChangePasswordForm, DeleteAccountForm
from webapp.auth.audit import Origin
from webapp.auth.limits import password_check_limit
from webapp.errors import Invalid
from webapp.htmx import full_redirect, render, see_other


def _page(*, password_form: ChangePasswordForm | None = None,
          delete_form: DeleteAccountForm | None = None, status: int = 200):
    # The form not being posted starts empty (formdata=None: it must not read this POST).
    return render("accounts/account.html",
                  password_form=password_form or ChangePasswordForm(formdata=None),
                  delete_form=delete_form or DeleteAccountForm(formdata=None),
                  status=status)


@bp.get("/account")
@login_required
def account():
    """Who you are, and the three things you can do about it."""
    return _page()


@bp.post("/account/password")
@login_required
@password_check_limit(methods=["POST"])
def change_password():
    """New password; every other device and API token is signed out, this browser stays."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user = services.change_password(current_user.id, form.current_password.data,
                                            form.new_password.data,
                                            origin=Origin.of_request())
        except services.WrongPassword as exc:
            form.current_password.errors.append(exc.message)
        except Invalid as exc:
            form.new_password.errors.append(exc.message.removeprefix("Password: "))
        else:
            _stay_signed_in(user)
            flash("Your password is changed. Every other device and API token is signed out.",
                  "success")
            return see_other(url_for("accounts.account"))
    return _page(password_form=form, status=422)


def _stay_signed_in(user) -> None:
    """The password change ended every session, this one too: sign this browser in again
    at the new session_version, keeping the session as it is (no session.clear(): when
    it began and "keep me signed in" still hold, webapp/auth/sessions.py)."""
    if user is None:
        logout_user()
        return
    login_user(user)


@bp.post("/account/delete")
@login_required
@password_check_limit(methods=["POST"])
def delete_account():
    """Cancel the person's places, anonymize the account, sign out: to the event list."""
    form = DeleteAccountForm()
    if form.validate_on_submit():
        try:
            services.delete_account(current_user.id, current_password=form.password.data,
                                    origin=Origin.of_request())
        except services.WrongPassword as exc:
            form.password.errors.append(exc.message)
        except services.OwnsEvents as exc:
            form.form_errors.append(exc.message)
            return _page(delete_form=form, status=409)
        else:
            logout_user()
            session.clear()
            flash("Your account is deleted and your registrations are cancelled. Goodbye.",
                  "info")
            return full_redirect(url_for("events.index"))
    return _page(delete_form=form, status=422)
