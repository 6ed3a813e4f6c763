"""Reading events, for the pages and the API (organizers write them: webapp/organizer)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from webapp.errors import NotFound
from webapp.events.models import Event
from webapp.extensions import db
from webapp.sqltypes import utcnow


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
