"""Events: reading them for the pages and the API, creating and editing them for organizers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from webapp.auth.models import User
from webapp.database import read_session, write_session
from webapp.errors import Forbidden, NotFound
from webapp.events.models import Event
from webapp.events.schemas import EventCreate, EventUpdate
from webapp.extensions import db
from webapp.sqltypes import utcnow
from webapp.validation import InvalidInput, validation_error_to_invalid

__all__ = [
    "create_event",
    "get_event",
    "upcoming_events",
    "update_event",
    "validation_error_to_invalid",
]


def upcoming_events() -> list[Event]:
    """Events that have not ended yet, soonest first."""
    return list(db.session.scalars(
        select(Event).options(joinedload(Event.organizer))
        .where(Event.ends_at > utcnow())
        .order_by(Event.starts_at, Event.id)
    ))


def get_event(event_id: int) -> Event:
    """:raise NotFound: no such event."""
    event = db.session.scalar(
        select(Event).options(joinedload(Event.organizer)).where(Event.id == event_id)
    )
    if event is None:
        raise NotFound("That event does not exist.")
    return event


# --- writing (organizers) -------------------------------------------------------

def _organizer_or_forbidden(session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.is_organizer:
        raise Forbidden("Only organizers can create events.")
    return user


def create_event(organizer_id: int, data: EventCreate) -> Event:
    """Create an event owned by the organizer.

    :raise Forbidden: the person is not an organizer.
    """
    with write_session() as session:
        _organizer_or_forbidden(session, organizer_id)
        event = Event(organizer_id=organizer_id, confirmed_count=0, waitlisted_count=0,
                      **data.model_dump())
        session.add(event)
        session.flush()
        event_id = event.id
    return get_event(event_id)


def update_event(event_id: int, actor_id: int, data: EventUpdate) -> Event:
    """Apply the fields that were sent; only the event's organizer may.

    Capacity and waitlist settings go through registrations.services.resize (the
    seat owner: it promotes from the waitlist and keeps Redis in step); the rest is
    written after it, so a refused capacity changes nothing at all.

    :raise NotFound: no such event.
    :raise Forbidden: the actor is not this event's organizer.
    :raise Invalid: starts_at not before ends_at (code invalid), or capacity below the
        confirmed count (code capacity_below_confirmed).
    """
    from webapp.registrations.services import UNCHANGED, resize

    with read_session() as session:
        event = session.get(Event, event_id)
        if event is None:
            raise NotFound("That event does not exist.")
        if event.organizer_id != actor_id:
            raise Forbidden("Only this event's organizer can change it.")
    changes = data.changes()
    starts_at = changes.get("starts_at", event.starts_at)
    ends_at = changes.get("ends_at", event.ends_at)
    if ends_at <= starts_at:
        raise InvalidInput("ends_at: must be after starts_at.",
                           [{"field": "ends_at", "message": "must be after starts_at"}])

    seat_fields = {"capacity", "waitlist_enabled", "waitlist_capacity"}
    if seat_fields & changes.keys():
        resize(event_id, changes.get("capacity", event.capacity),
               waitlist_enabled=changes.get("waitlist_enabled"),
               waitlist_capacity=changes.get("waitlist_capacity", UNCHANGED))
    plain = {k: v for k, v in changes.items() if k not in seat_fields}
    if plain:
        try:
            with write_session() as session:
                # As registrations lock it: FOR NO KEY UPDATE (see _lock_event there).
                locked = session.scalar(select(Event).where(Event.id == event_id)
                                        .with_for_update(key_share=True))
                if locked is None:
                    raise NotFound("That event does not exist.")
                for name, value in plain.items():
                    setattr(locked, name, value)
                session.flush()
        except IntegrityError as exc:  # a concurrent edit moved the other end of the range
            raise InvalidInput("ends_at: must be after starts_at.",
                               [{"field": "ends_at", "message": "must be after starts_at"}]
                               ) from exc
    return get_event(event_id)
