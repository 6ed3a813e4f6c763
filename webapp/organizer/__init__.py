"""Organizer pages: create and edit events, attendee and waitlist lists, CSV, cancel on behalf."""

from flask import Blueprint

bp = Blueprint("organizer", __name__, url_prefix="/organizer", template_folder="templates")

from webapp.organizer import views  # noqa: E402,F401
