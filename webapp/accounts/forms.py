"""The forms of the account page (CSRF-protected by Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField
from wtforms.validators import DataRequired, Length

from webapp.auth.schemas import PASSWORD_RULE
from webapp.auth.services import PASSWORD_MAX, PASSWORD_MIN


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password",
                                     validators=[DataRequired(), Length(max=PASSWORD_MAX)])
    new_password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(min=PASSWORD_MIN, max=PASSWORD_MAX)],
        description=PASSWORD_RULE,
    )


class DeleteAccountForm(FlaskForm):
    password = PasswordField("Your password",
                             validators=[DataRequired(), Length(max=PASSWORD_MAX)])
    confirm = BooleanField(
        "Yes, delete my account and cancel my registrations. This cannot be undone.",
        validators=[DataRequired("Tick the box to confirm.")])
