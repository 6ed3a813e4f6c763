"""The event list and the event page with its registration panel."""

from __future__ import annotations

from flask_login import current_user

from webapp.events import bp, services
from webapp.htmx import render
from webapp.registrations.panel import panel_for


@bp.get("/")
def index():
    """Upcoming events, soonest first, with seats left."""
    return render("events/index.html", events=services.upcoming_events())


@bp.get("/events/<id:event_id>")
def detail(event_id: int):
    """The event and the registration panel (the panel alone for htmx)."""
    event = services.get_event(event_id)
    return render("events/detail.html", block="panel", event=event,
                  panel=panel_for(event, current_user))
