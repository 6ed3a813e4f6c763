"""Valid event values for calling schemas and services directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from webapp.events.schemas import EventCreate


def event_create(**overrides) -> EventCreate:
    """A valid new event five days ahead; `overrides` replace any field."""
    starts = datetime.now(UTC) + timedelta(days=5)
    values = {"title": "Meetup", "starts_at": starts, "ends_at": starts + timedelta(hours=1),
              "location": "Room 2", "capacity": 4}
    values.update(overrides)
    return EventCreate(**values)
