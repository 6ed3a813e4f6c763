"""Your account: change the password, download your data, delete the account."""

from flask import Blueprint

bp = Blueprint("accounts", __name__, template_folder="templates")

from webapp.accounts import views  # noqa: E402,F401
