"""HTTP for registrations: the panel's POSTs, the confirmation page, the person's own lists."""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask_login import current_user, login_required

from webapp.errors import Conflict, EmailNotVerified, Failed, NotRegistered, Unavailable
from webapp.events.services import get_event
from webapp.htmx import is_htmx, render, see_other
from webapp.http_errors import status_of, with_retry_after
from webapp.recovery.services import require_verified_email
from webapp.registrations import bp, queries, services
from webapp.registrations.idempotency import Retry
from webapp.registrations.models import Status
from webapp.registrations.panel import Panel, PanelState, panel_for, panel_of_duplicate

WAITLISTED = ("The event is full, so you joined the waitlist: you are number {position}. "
              "If a seat frees up, it is yours and we email you.")
LEFT = {Status.WAITLISTED: "You left the waitlist.",
        Status.CONFIRMED: "Your registration is cancelled and your seat is free for "
                          "someone else."}

# A click that placed nobody, by the refusal's code -> (the panel, the no-JavaScript notice).
# The panel's seat figure comes along: seats_left 0 says Full beside the panel too.
_REFUSED = {
    "event_full": lambda event_id, exc: (
        Panel(PanelState.FULL, event_id, message="Sorry, the last seat just went."),
        "Sorry, this event is full."),
    "registration_closed": lambda event_id, exc: (
        Panel(PanelState.CLOSED, event_id, message=exc.message), exc.message),
    # The person has a place, or an attempt of theirs is still in flight.
    "already_registered": lambda event_id, exc: (
        panel_of_duplicate(get_event(event_id), current_user), None),
}


def _answer(panel: Panel, notice: str | None, status: int = 200, event=None):
    """The panel (and its seat figure) for htmx; else the event page: with the panel for
    an error (status >= 400, `event` given), else after a redirect, with the notice."""
    if is_htmx():
        return render("registrations/_panel_answer.html", status=status, panel=panel)
    if status >= 400:
        return render("events/detail.html", event=event, panel=panel, status=status)
    if notice:
        flash(notice, "info" if panel.state == PanelState.WAITLISTED else "warning")
    return redirect(url_for("events.detail", event_id=panel.event_id), code=303)


@bp.post("/events/<id:event_id>/register")
@login_required
def register(event_id: int):
    """Register for the event: to the confirmation page, or the panel says why not."""
    try:
        require_verified_email(current_user)
    except EmailNotVerified as exc:
        return _answer(Panel(PanelState.UNVERIFIED, event_id, message=exc.message), None,
                       status_of(exc), get_event(event_id))
    retry = Retry.of(request.form.get("idempotency_key"), request.method, request.path)
    try:
        outcome = services.register(event_id, current_user.id, request_id=g.request_id,
                                    retry=retry)
    except (Conflict, Failed) as exc:
        if exc.code in _REFUSED:
            return _answer(*_REFUSED[exc.code](event_id, exc))
        # Rolled back, nothing taken: say so in the panel, keep the button.
        event = get_event(event_id)
        return _answer(Panel(PanelState.ERROR, event_id, event.seats_left, event.capacity,
                             exc.message), None, status_of(exc), event)
    except Unavailable as exc:
        if not is_htmx():
            raise  # the error page, with Retry-After
        # The database is not answering: the panel says so without asking it anything.
        return with_retry_after(_answer(Panel(PanelState.ERROR, event_id, message=exc.message),
                                        None, status_of(exc)), exc)
    if outcome.status == Status.CONFIRMED:
        return see_other(url_for("registrations.confirmation", event_id=event_id))
    message = WAITLISTED.format(position=outcome.position)
    return _answer(Panel(PanelState.WAITLISTED, event_id, message=message,
                         position=outcome.position), message)


@bp.post("/events/<id:event_id>/cancel")
@login_required
def cancel(event_id: int):
    """Cancel the person's registration; the panel goes back to Register."""
    try:
        message = LEFT[services.cancel(event_id, current_user.id,
                                       request_id=g.request_id).previous]
    except NotRegistered as exc:
        message = exc.message
    if is_htmx():
        return _answer(panel_for(get_event(event_id), current_user, message), None)
    flash(message, "info")
    return redirect(url_for("events.detail", event_id=event_id), code=303)


@bp.get("/events/<id:event_id>/confirmation")
@login_required
def confirmation(event_id: int):
    """Where a successful registration lands: the event and the panel, registered."""
    event = get_event(event_id)
    if queries.registration_status(event_id, current_user.id) != Status.CONFIRMED:
        return redirect(url_for("events.detail", event_id=event_id), code=303)
    return render("registrations/confirmation.html", block="main", event=event,
                  panel=panel_for(event, current_user))


@bp.get("/dashboard")
@login_required
def dashboard():
    """The signed-in person's home."""
    return render("registrations/dashboard.html",
                  registrations=queries.live_registrations(current_user.id))


@bp.get("/me/events")
@login_required
def my_events():
    """My Registered Events: live registrations sorted by event date."""
    return render("registrations/my_events.html",
                  registrations=queries.live_registrations(current_user.id))
