"""Read-only lists of registrations: an event's (organizer pages, API), a person's own."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from webapp.errors import Invalid
from webapp.events.models import Event
from webapp.extensions import db
from webapp.registrations.models import LIVE, Registration, Status


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
        statuses: tuple[Status, ...] = LIVE
    elif status in tuple(Status):
        statuses = (Status(status),)
    else:
        raise Invalid(f"Status must be one of: {', '.join(Status)}.", code="invalid_status")
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
    Status.CONFIRMED: (Registration.registered_at, Registration.id),
    Status.WAITLISTED: (Registration.position, Registration.id),
    Status.CANCELLED: (Registration.cancelled_at, Registration.id),
}


def live_registrations(user_id: int, status: Status | None = None) -> list[Registration]:
    """The person's confirmed and waitlisted places (or only `status`), soonest event first."""
    return list(db.session.scalars(
        select(Registration)
        .join(Event, Event.id == Registration.event_id)
        .where(Registration.user_id == user_id,
               Registration.status.in_(LIVE if status is None else (status,)))
        .options(selectinload(Registration.event).selectinload(Event.organizer))
        .order_by(Event.starts_at, Event.id)
    ))


def registration_status(event_id: int, user_id: int) -> Status | None:
    """The person's registration status for the event; None without a row."""
    status = db.session.scalar(
        select(Registration.status).where(Registration.event_id == event_id,
                                          Registration.user_id == user_id))
    return None if status is None else Status(status)
