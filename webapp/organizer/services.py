"""What organizers may do: create and edit their events, and see and touch only their own.

owned_event() is the one check of "is this the organizer of this event?", for
the pages and the API alike.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from webapp.auth.models import User
from webapp.database import write_session
from webapp.errors import Forbidden
from webapp.events.models import Event
from webapp.events.schemas import EventCreate, EventUpdate
from webapp.events.services import get_event
from webapp.extensions import db
from webapp.registrations import seats
from webapp.registrations.services import change_seats
from webapp.sqltypes import utcnow
from webapp.validation import InvalidInput

SEAT_FIELDS = ("capacity", "waitlist_enabled", "waitlist_capacity")


def require_organizer(user) -> None:
    """:raise Forbidden: the person is not an organizer."""
    if not getattr(user, "is_organizer", False):
        raise Forbidden("Only organizers can create and manage events.")


def check_owner(event: Event, user) -> Event:
    """Events are public (their pages list the organizer), so a stranger gets 403
    rather than a 404 that would pretend the event does not exist. The role is
    checked too: someone whose organizer role was taken away keeps no control of
    the events they made.

    :raise Forbidden: not an organizer (any more), or someone else organizes it.
    """
    require_organizer(user)
    if event.organizer_id != getattr(user, "id", None):
        raise Forbidden("Only this event's organizer can do that.")
    return event


def owned_event(event_id: int, user) -> Event:
    """The event, if `user` organizes it.

    :raise NotFound: no such event.
    :raise Forbidden: someone else organizes it.
    """
    return check_owner(get_event(event_id), user)


def own_events(organizer_id: int) -> tuple[list[Event], list[Event]]:
    """The organizer's events: (not ended yet, soonest first; ended, latest first)."""
    events = list(db.session.scalars(
        select(Event).where(Event.organizer_id == organizer_id)
        .order_by(Event.starts_at, Event.id)
    ))
    now = utcnow()
    upcoming = [e for e in events if e.ends_at > now]
    past = [e for e in reversed(events) if e.ends_at <= now]
    return upcoming, past


def create_event(organizer: User, data: EventCreate) -> Event:
    """Create an event owned by the organizer.

    :raise Forbidden: the person is not an organizer.
    """
    require_organizer(organizer)
    with write_session() as session:
        event = Event(organizer_id=organizer.id, confirmed_count=0, waitlisted_count=0,
                      **data.model_dump())
        session.add(event)
        session.flush()
        event_id = event.id
    return get_event(event_id)


def update_event(event_id: int, organizer: User, data: EventUpdate, *,
                 request_id: str | None = None) -> Event:
    """Apply the fields that were sent, in ONE transaction: a refused value changes
    nothing at all. Capacity and waitlist settings go through change_seats (it promotes
    from the waitlist and reloads the gate after the commit).

    :raise NotFound: no such event.
    :raise Forbidden: someone else organizes it.
    :raise InvalidInput: a start or end moved to the past, or the end not after the start.
    :raise Invalid: capacity or waitlist limit below who holds a place (seats.set_limits).
    """
    changes = data.changes()
    with write_session() as session:
        event = check_owner(seats.lock_event(session, event_id), organizer)
        moved = tuple(name for name in ("starts_at", "ends_at")
                      if name in changes and changes[name] != getattr(event, name))
        _check_times(changes.get("starts_at", event.starts_at),
                     changes.get("ends_at", event.ends_at), moved=moved)
        for name, value in changes.items():
            if name not in SEAT_FIELDS:
                setattr(event, name, value)
        if set(SEAT_FIELDS) & changes.keys():
            limits = {name: changes.get(name, getattr(event, name)) for name in SEAT_FIELDS}
            change_seats(session, event, **limits, request_id=request_id)
    return get_event(event_id)


def _check_times(starts_at: datetime, ends_at: datetime, *, moved: tuple[str, ...]) -> None:
    """:raise InvalidInput: a moved time in the past, or the end not after the start."""
    now = utcnow()
    for name in moved:
        value = starts_at if name == "starts_at" else ends_at
        if value <= now:
            raise _times_invalid(name, "must be in the future")
    if ends_at <= starts_at:
        raise _times_invalid("ends_at", "must be after starts_at")


def _times_invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}.", [{"field": field, "message": message}])
