"""HTTP for registrations: the panel's POSTs, the confirmation page, the person's own lists."""

from __future__ import annotations

from flask import flash, g, redirect, url_for
from flask_login import current_user, login_required

from webapp.errors import AlreadyRegistered, EventFull, ServiceError
from webapp.events.services import get_event
from webapp.htmx import is_htmx, render, see_other
from webapp.registrations import bp, services
from webapp.registrations.models import CONFIRMED, WAITLISTED
from webapp.registrations.services import Panel, RegistrationClosed


def _panel(panel: Panel, status: int = 200):
    """The panel alone: the answer to the panel's own htmx POSTs."""
    return render("registrations/_panel.html", status=status, panel=panel)


@bp.post("/events/<id:event_id>/register")
@login_required
def register(event_id: int):
    """Register for the event: to the confirmation page, or the panel says why not."""
    try:
        outcome = services.register(event_id, current_user.id, request_id=g.request_id)
    except EventFull:
        if is_htmx():
            return _panel(Panel("full", event_id, message="Sorry, the last seat just went."))
        flash("Sorry, this event is full.", "warning")
        return redirect(url_for("events.detail", event_id=event_id), code=303)
    except AlreadyRegistered:
        if is_htmx():
            panel = services.panel_for(get_event(event_id), current_user)
            if panel.state != "waitlisted":  # SQL may not show an attempt still in flight
                panel = Panel("registered", event_id)
            return _panel(panel)
        return redirect(url_for("events.detail", event_id=event_id), code=303)
    except RegistrationClosed as exc:
        if is_htmx():
            return _panel(Panel("closed", event_id, message=exc.message))
        flash(exc.message, "warning")
        return redirect(url_for("events.detail", event_id=event_id), code=303)
    except ServiceError as exc:
        if exc.status == 404:
            raise
        # The service rolled everything back; say so in the panel, keep the button.
        event = get_event(event_id)
        panel = Panel("error", event_id, event.seats_left, message=exc.message)
        if is_htmx():
            return _panel(panel, status=exc.status)
        return render("events/detail.html", event=event, panel=panel, status=exc.status)
    if outcome.status == WAITLISTED:
        message = (f"The event is full, so you joined the waitlist: you are number "
                   f"{outcome.position}. If a seat frees up, it is yours and we email you.")
        if is_htmx():
            return _panel(Panel("waitlisted", event_id, message=message,
                                position=outcome.position))
        flash(message, "info")
        return redirect(url_for("events.detail", event_id=event_id), code=303)
    return see_other(url_for("registrations.confirmation", event_id=event_id))


@bp.post("/events/<id:event_id>/cancel")
@login_required
def cancel(event_id: int):
    """Cancel the person's registration; the panel goes back to Register."""
    try:
        outcome = services.cancel(event_id, current_user.id, request_id=g.request_id)
    except ServiceError as exc:
        if exc.status >= 500 or exc.code == "not_found":  # no such event, or broken
            raise
        message = exc.message
    else:
        message = ("You left the waitlist." if outcome.previous == WAITLISTED else
                   "Your registration is cancelled and your seat is free for someone else.")
    if is_htmx():
        event = get_event(event_id)
        panel = services.panel_for(event, current_user)
        return _panel(Panel(panel.state, event_id, panel.seats_left, message=message))
    flash(message, "info")
    return redirect(url_for("events.detail", event_id=event_id), code=303)


@bp.get("/events/<id:event_id>/confirmation")
@login_required
def confirmation(event_id: int):
    """Where a successful registration lands: the event and the panel, registered."""
    event = get_event(event_id)
    if services.current_registration_status(event_id, current_user.id) != CONFIRMED:
        return redirect(url_for("events.detail", event_id=event_id), code=303)
    return render("registrations/confirmation.html", block="main", event=event,
                  panel=services.panel_for(event, current_user))


@bp.get("/dashboard")
@login_required
def dashboard():
    """The signed-in person's home."""
    registrations = services.live_registrations(current_user.id)
    return render("registrations/dashboard.html", registrations=registrations)


@bp.get("/me/events")
@login_required
def my_events():
    """My Registered Events: live registrations sorted by event date."""
    return render("registrations/my_events.html",
                  registrations=services.live_registrations(current_user.id))
