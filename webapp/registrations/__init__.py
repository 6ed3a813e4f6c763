"""Registering, cancelling, the confirmation page and "My Registered Events"."""

from flask import Blueprint

bp = Blueprint("registrations", __name__, template_folder="templates")

from webapp.registrations import views  # noqa: E402,F401
