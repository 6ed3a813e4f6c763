"""The registration panel's view model: what it shows one person for one event."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from webapp.events.models import Event
from webapp.extensions import db
from webapp.registrations.models import Registration, Status
from webapp.sqltypes import utcnow


class PanelState(StrEnum):
    OPEN = "open"
    ANONYMOUS = "anonymous"  # open, and the Register button asks to sign in first
    REGISTERED = "registered"
    WAITLISTED = "waitlisted"
    JOIN_WAITLIST = "join_waitlist"
    FULL = "full"
    CLOSED = "closed"
    ERROR = "error"
    UNVERIFIED = "unverified"  # REQUIRE_EMAIL_VERIFICATION: the address is not confirmed yet


@dataclass(frozen=True)
class Panel:
    """The panel, and the seat figure beside it that every answer of the panel updates.

    capacity None: the figure is not known here; a panel with seats_left 0 then still
    says Full, the one thing certain after a refusal for lack of seats.
    """

    state: PanelState
    event_id: int
    seats_left: int = 0
    capacity: int | None = None
    message: str | None = None
    position: int | None = None


def panel_for(event: Event, user, message: str | None = None) -> Panel:
    """The panel from SQL, as the event and confirmation pages show it."""
    def panel(state: PanelState, position: int | None = None) -> Panel:
        return Panel(state, event.id, event.seats_left, event.capacity, message, position)

    signed_in = user is not None and user.is_authenticated
    if signed_in:
        status, position = db.session.execute(
            select(Registration.status, Registration.position)
            .where(Registration.event_id == event.id, Registration.user_id == user.id)
        ).one_or_none() or (None, None)
        if status == Status.CONFIRMED:
            return panel(PanelState.REGISTERED)
        if status == Status.WAITLISTED:
            return panel(PanelState.WAITLISTED, position)
    if event.starts_at <= utcnow():
        return panel(PanelState.CLOSED)
    if event.is_full or event.waitlisted_count > 0:
        waitlist_open = event.waitlist_enabled and (
            event.waitlist_capacity is None or event.waitlisted_count < event.waitlist_capacity)
        return panel(PanelState.JOIN_WAITLIST if waitlist_open else PanelState.FULL)
    return panel(PanelState.OPEN if signed_in else PanelState.ANONYMOUS)


def panel_of_duplicate(event: Event, user) -> Panel:
    """After 'already registered': what SQL shows, or (an attempt of the same person still
    in flight, not committed yet) registered."""
    panel = panel_for(event, user)
    if panel.state in (PanelState.REGISTERED, PanelState.WAITLISTED):
        return panel
    return Panel(PanelState.REGISTERED, event.id, event.seats_left, event.capacity)
