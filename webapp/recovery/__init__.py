"""Accounts people can recover: forgot and reset a password, verify an address."""

from flask import Blueprint

bp = Blueprint("recovery", __name__, template_folder="templates")

from webapp.recovery import views  # noqa: E402,F401
