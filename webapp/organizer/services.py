"""What organizers may see and touch: their own events, checked once here for every page."""

from __future__ import annotations

from sqlalchemy import select

from webapp.errors import Forbidden
from webapp.events.models import Event
from webapp.events.services import get_event
from webapp.extensions import db
from webapp.sqltypes import utcnow


def require_organizer(user) -> None:
    """:raise Forbidden: the person is not an organizer."""
    if not getattr(user, "is_organizer", False):
        raise Forbidden("Only organizers can create and manage events.")


def owned_event(event_id: int, user) -> Event:
    """The event, if `user` organizes it.

    Events are public (their pages list the organizer), so a stranger gets 403
    rather than a 404 that would pretend the event does not exist.

    :raise NotFound: no such event.
    :raise Forbidden: someone else organizes it.
    """
    event = get_event(event_id)
    if event.organizer_id != user.id:
        raise Forbidden("Only this event's organizer can do that.")
    return event


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
