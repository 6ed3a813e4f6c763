"""The registration use cases: register, cancel, and change an event's seats.

register() (webapp/registrations/attempts.py, one attempt from the click to the
answer; here too, as every caller knows it): Redis gate (hold) -> one SQL
transaction (seats.take_place, then lifecycle.move: registration + activity +
outbox email) -> confirm the hold, or release it if anything failed.
cancel(): one SQL transaction (the move, the seat given back, promotions),
then Redis mirrors it. Email jobs are enqueued only after the commit.
"""

from __future__ import annotations

import logging
from typing import Any

from webapp.database import (
    CommitUnknown,
    on_commit,
    unavailable,
    write_session,
)
from webapp.errors import (
    Busy,
    NotRegistered,
    OutcomeUnknown,
    ServiceError,
    Unavailable,
)
from webapp.events.models import Event
from webapp.registrations import gate as seat_gate
from webapp.registrations import lifecycle, seats, stalls
from webapp.registrations.attempts import Outcome, register  # noqa: F401 (the use case)
from webapp.registrations.models import LIVE, Status
from webapp.reports.models import Action

log = logging.getLogger("turnout.registrations")

CANCEL_BUSY = ("Your registration could not be cancelled just now. It is unchanged; "
               "please try again in a few seconds.")
CANCEL_UNKNOWN = ("We could not tell whether your cancellation went through. Look at My "
                  "registrations in a moment; cancelling again is safe.")


def cancel(event_id: int, user_id: int, *, request_id: str | None = None,
           action: Action | None = None) -> Outcome:
    """Cancel the person's seat or waitlist place; a freed seat goes to the head of the
    queue (unless the event has started). `action`: organizer_cancel on someone's behalf.

    One SQL transaction cancels, promotes in FIFO order and closes the gap in
    the waitlist positions; Redis mirrors it only after the commit, in one
    script, so a failed transaction leaves both sides exactly as they were.

    :raise NotFound: no such event.
    :raise NotRegistered: the person has no live place at this event.
    :raise Busy: the database could not answer in time; nothing changed.
    :raise OutcomeUnknown: the link broke during the commit (Redis is left to reconcile).
    :raise Unavailable: the transaction failed and was rolled back.
    """
    try:
        with stalls.watch(event_id), write_session() as session:
            seats.lock_event(session, event_id)
            mine = lifecycle.current(session, event_id, user_id)
            if mine is None or mine.status not in LIVE:
                raise NotRegistered()
            lifecycle.move(session, event_id=event_id, user_id=user_id, to=Status.CANCELLED,
                           was=mine, request_id=request_id, action=action)
            seats.give_back(session, event_id, mine)
            promoted = seats.fill_from_waitlist(session, event_id, request_id)
    except ServiceError:
        raise
    except CommitUnknown as exc:
        log.warning("cancellation outcome unknown", extra={
            "event_id": event_id, "user_id": user_id, "request_id": request_id})
        raise OutcomeUnknown(CANCEL_UNKNOWN) from exc
    except Exception as exc:
        if unavailable(exc):
            raise Busy(CANCEL_BUSY) from exc
        log.exception("cancellation failed; rolled back",
                      extra={"event_id": event_id, "user_id": user_id, "request_id": request_id})
        raise Unavailable(CANCEL_BUSY) from exc
    seat_gate.mirror(event_id, user_id, promoted)
    log.info("cancellation", extra={"event_id": event_id, "user_id": user_id,
                                    "outcome": "cancelled", "promoted": promoted,
                                    "request_id": request_id})
    return Outcome(Status.CANCELLED, event_id, user_id, mine.id, previous=mine.status,
                   promoted=tuple(promoted))


def change_seats(session, event: Event, *, capacity: int, waitlist_enabled: bool,
                 waitlist_capacity: int | None, request_id: str | None = None) -> list[int]:
    """New capacity and waitlist settings for the locked event, in the caller's
    transaction: freed seats go to the waitlist in order, and the gate reloads the
    event from SQL after the commit. Returns who was promoted.

    :raise Invalid: see seats.set_limits.
    """
    seats.set_limits(session, event, capacity=capacity, waitlist_enabled=waitlist_enabled,
                     waitlist_capacity=waitlist_capacity)
    promoted = seats.fill_from_waitlist(session, event.id, request_id)
    on_commit(session, lambda: seat_gate.reload(event.id))
    return promoted


UNCHANGED: Any = object()


def resize(event_id: int, capacity: int, *, waitlist_enabled: bool | None = None,
           waitlist_capacity: int | None = UNCHANGED,
           request_id: str | None = None) -> list[int]:
    """change_seats() in a transaction of its own; settings not given stay as they are."""
    with write_session() as session:
        event = seats.lock_event(session, event_id)
        return change_seats(
            session, event, capacity=capacity,
            waitlist_enabled=event.waitlist_enabled if waitlist_enabled is None
            else waitlist_enabled,
            waitlist_capacity=event.waitlist_capacity if waitlist_capacity is UNCHANGED
            else waitlist_capacity,
            request_id=request_id)


def fill_from_waitlist(event_id: int, request_id: str | None = None) -> list[int]:
    """Give any free seats to the head of the waitlist (self-healing; reconcile calls it)."""
    with write_session() as session:
        seats.lock_event(session, event_id)
        promoted = seats.fill_from_waitlist(session, event_id, request_id)
    if promoted:
        seat_gate.mirror(event_id, None, promoted)
    return promoted
