"""HTTP for organizers: their events, the event form, the lists, CSV and cancelling on behalf."""

from __future__ import annotations

from datetime import datetime

from flask import Response, flash, g, redirect, request, url_for
from flask_login import current_user, login_required
from pydantic import ValidationError
from sqlalchemy import select

from webapp.auth.models import User
from webapp.errors import Invalid, NotFound, NotRegistered
from webapp.events import schemas
from webapp.events import services as event_services
from webapp.extensions import db
from webapp.htmx import is_htmx, render, see_other
from webapp.mail.services import failed_for_event
from webapp.organizer import bp, exports, services
from webapp.organizer.forms import EventForm
from webapp.registrations import services as registrations
from webapp.registrations.models import Status
from webapp.registrations.queries import event_registrations
from webapp.reports.models import Action
from webapp.validation import validation_error_to_invalid

FORM_TEMPLATE = "organizer/event_form.html"
UNPROCESSABLE = 422


@bp.get("/")
@login_required
def home():
    """The organizer's own events with their seat and waitlist counts."""
    services.require_organizer(current_user)
    upcoming, past = services.own_events(current_user.id)
    return render("organizer/home.html", block="main", upcoming=upcoming, past=past)


@bp.route("/events/new", methods=["GET", "POST"])
@login_required
def new_event():
    """Create an event; errors re-render the form with the values kept."""
    services.require_organizer(current_user)
    form = EventForm()
    if request.method == "POST":
        values = _schema_values(form.parsed())
        try:
            data = _validated(schemas.EventCreate, values)
            if not form.has_errors:
                event = services.create_event(current_user, data)
        except Invalid as exc:
            _show(form, exc)
        if not form.has_errors:
            flash(f"“{event.title}” is created.", "success")
            return see_other(url_for("organizer.event", event_id=event.id))
    return _form_page(form, event=None)


@bp.route("/events/<id:event_id>/edit", methods=["GET", "POST"])
@login_required
def edit_event(event_id: int):
    """Edit an event; a capacity below the confirmed count is refused."""
    event = services.owned_event(event_id, current_user)
    form = EventForm()
    if request.method == "GET":
        form.fill_from(event)
        return _form_page(form, event=event)
    changes = _changes(event, _schema_values(form.parsed()))
    try:
        data = _validated(schemas.EventUpdate, changes)
        if not form.has_errors:
            event = services.update_event(event_id, current_user, data,
                                             request_id=g.request_id)
    except Invalid as exc:
        _show(form, exc)
    if form.has_errors:
        return _form_page(form, event=event)
    flash("Saved." if changes else "Nothing changed.", "success")
    return see_other(url_for("organizer.event", event_id=event_id))


@bp.get("/events/<id:event_id>")
@login_required
def event(event_id: int):
    """The attendee list and the waitlist, in order, with registration times."""
    event = services.owned_event(event_id, current_user)
    return render("organizer/event.html", block="main", **_lists(event),
                  failed_emails=failed_for_event(db.session, event.id))


@bp.get("/events/<id:event_id>/attendees.csv")
@login_required
def attendees_csv(event_id: int):
    """Confirmed attendees as a CSV download."""
    return _list_csv(event_id, "attendees")


@bp.get("/events/<id:event_id>/waitlist.csv")
@login_required
def waitlist_csv(event_id: int):
    """The waitlist, in order, as a CSV download."""
    return _list_csv(event_id, "waitlist")


@bp.route("/events/<id:event_id>/registrations/<id:user_id>/cancel", methods=["GET", "POST"])
@login_required
def cancel_registration(event_id: int, user_id: int):
    """Cancel someone's place on their behalf (GET asks first); the waitlist moves up."""
    event = services.owned_event(event_id, current_user)
    if request.method == "GET":
        registration = _live_registration(event.id, user_id)
        return render("organizer/cancel.html", block="main", event=event,
                      registration=registration)
    person = db.session.get(User, user_id)
    name = person.name if person else "That person"
    try:
        outcome = registrations.cancel(event.id, user_id, request_id=g.request_id,
                                       action=Action.ORGANIZER_CANCEL)
    except NotRegistered:
        message, category = f"{name} has no seat or waitlist place here any more.", "warning"
    else:
        what = "registration" if outcome.previous == Status.CONFIRMED else "waitlist place"
        message, category = f"{name}'s {what} is cancelled.", "success"
        if outcome.promoted:
            moved = ", ".join(_names(outcome.promoted))
            message += f" Moved up from the waitlist: {moved}."
    if is_htmx():
        event = event_services.get_event(event_id)
        return render("organizer/event.html", block="lists", notice=(category, message),
                      **_lists(event))
    flash(message, category)
    return redirect(url_for("organizer.event", event_id=event.id), code=303)


# --- helpers -----------------------------------------------------------------------------

def _form_page(form: EventForm, *, event) -> Response:
    status = UNPROCESSABLE if form.has_errors else 200
    # The form alone answers its own htmx post; a navigation gets the page's main area.
    block = "form" if request.method == "POST" else "main"
    return render(FORM_TEMPLATE, block=block, status=status, form=form, event=event)


def _schema_values(values: dict) -> dict:
    """Blank required values are left out so the schema says "required", not "wrong type".

    An empty waitlist capacity stays: it means "no limit".
    """
    return {k: v for k, v in values.items() if v is not None or k == "waitlist_capacity"}


def _changes(event, values: dict) -> dict:
    """Only what the organizer changed: the form shows times to the minute."""
    changed = {}
    for name, value in values.items():
        current = getattr(event, name)
        if isinstance(current, datetime) and isinstance(value, datetime):
            if value == current.replace(second=0, microsecond=0):
                continue
        elif value == current:
            continue
        changed[name] = value
    return changed


def _validated(schema, values: dict):
    """The schema's model of `values`; :raise Invalid: with the schema's messages per field."""
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        raise validation_error_to_invalid(exc) from exc


# The seat refusals (webapp/registrations/seats.py set_limits) name their field by code.
_FIELD_OF_CODE = {"capacity_below_confirmed": "capacity",
                  "waitlist_capacity_below_waiting": "waitlist_capacity"}


def _show(form: EventForm, exc: Invalid) -> None:
    """The service's refusal, next to the fields it names (else above the form)."""
    if exc.code in _FIELD_OF_CODE:
        form.add_errors({_FIELD_OF_CODE[exc.code]: [exc.message]})
        return
    fields = getattr(exc, "fields", None) or []
    if not fields:
        form.form_errors.append(exc.message)
    messages: dict[str, list[str]] = {}
    for item in fields:
        messages.setdefault(item["field"], []).append(_sentence(item["message"]))
    form.add_errors(messages)


# The schema speaks the API's field names; people read the form's labels.
_FIELD_WORDS = {"starts_at": "the start", "ends_at": "the end", "capacity": "the capacity"}


def _sentence(message: str) -> str:
    """"must be after starts_at" -> "Must be after the start."."""
    if message == "is required":
        return "Please fill this in."
    for name, words in _FIELD_WORDS.items():
        message = message.replace(name, words)
    message = message[:1].upper() + message[1:]
    return message if message.endswith(".") else message + "."


def _lists(event) -> dict:
    return {"event": event,
            "confirmed": event_registrations(event.id, Status.CONFIRMED),
            "waitlisted": event_registrations(event.id, Status.WAITLISTED)}


def _live_registration(event_id: int, user_id: int):
    for registration in event_registrations(event_id):
        if registration.user_id == user_id:
            return registration
    raise NotFound("That person has no seat or waitlist place at this event.")


def _names(user_ids) -> list[str]:
    found = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all())
    return [found.get(uid, f"#{uid}") for uid in user_ids]


# An event's lists as downloads: whose registrations, and how their rows are written.
CSV_LISTS = {
    "attendees": (Status.CONFIRMED, exports.attendees_csv),  # in the order they registered
    "waitlist": (Status.WAITLISTED, exports.waitlist_csv),  # in queue order
}


def _list_csv(event_id: int, which: str) -> Response:
    """One of the organizer's own event's lists, as event-<id>-<which>.csv."""
    event = services.owned_event(event_id, current_user)
    status, write = CSV_LISTS[which]
    body = write(event_registrations(event.id, status))
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="event-{event.id}-{which}.csv"'
    # Names and emails of people: nothing in between may keep a copy.
    response.headers["Cache-Control"] = "no-store"
    return response
