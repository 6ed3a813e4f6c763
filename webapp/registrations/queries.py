"""Read-only lists of an event's registrations, for the organizer pages and the API."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from webapp.errors import Invalid
from webapp.extensions import db
from webapp.registrations.models import (
    CANCELLED,
    CONFIRMED,
    LIVE_STATUSES,
    WAITLISTED,
    Registration,
)

STATUSES = (CONFIRMED, WAITLISTED, CANCELLED)


def event_registrations(event_id: int, status: str | None = None) -> list[Registration]:
    """An event's registrations, each with its user loaded.

    Confirmed people come in the order they registered (registered_at, then
    id), the waitlist in queue order (position), cancelled ones by when they
    cancelled. ``status=None`` means the live ones: confirmed first, then the
    waitlist.

    :param event_id: the event; an unknown id gives an empty list.
    :param status: ``confirmed``, ``waitlisted``, ``cancelled`` or None.
    :raise Invalid: an unknown status (code ``invalid_status``).
    """
    if status is None:
        statuses: tuple[str, ...] = LIVE_STATUSES
    elif status in STATUSES:
        statuses = (status,)
    else:
        raise Invalid(f"Status must be one of: {', '.join(STATUSES)}.", code="invalid_status")
    rows: list[Registration] = []
    for one in statuses:
        rows.extend(db.session.scalars(
            select(Registration)
            .where(Registration.event_id == event_id, Registration.status == one)
            .options(selectinload(Registration.user))
            .order_by(*_ORDER[one])
        ))
    return rows


_ORDER = {
    CONFIRMED: (Registration.registered_at, Registration.id),
    WAITLISTED: (Registration.position, Registration.id),
    CANCELLED: (Registration.cancelled_at, Registration.id),
}
