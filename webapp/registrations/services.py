"""The registration service: the only code that gives or takes a seat.

register(): Redis gate (hold) -> one SQL transaction (row + activity + guarded
seat count) -> confirm the hold, or release it if anything failed.
cancel(): one SQL transaction, then the seat is freed in Redis.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from webapp.database import read_session, write_session
from webapp.errors import (
    AlreadyRegistered,
    Conflict,
    EventFull,
    NotFound,
    NotRegistered,
    ServiceError,
    Unavailable,
)
from webapp.events.models import Event
from webapp.extensions import db, redis_store
from webapp.registrations import gate as seat_gate
from webapp.registrations.models import CANCELLED, CONFIRMED, LIVE_STATUSES, Registration
from webapp.reports.services import record, record_alone
from webapp.sqltypes import utcnow

log = logging.getLogger("turnout.registrations")


class RegistrationClosed(Conflict):
    code, message = "registration_closed", "Registration has closed: this event has started."


class RegistrationFailed(Unavailable):
    status = 500
    code = "registration_failed"
    message = ("Something went wrong and your registration was not saved. "
               "No seat was taken; please try again.")


@dataclass(frozen=True)
class Outcome:
    status: str
    event_id: int
    user_id: int
    registration_id: int | None = None
    position: int | None = None
    seats_left: int | None = None


def get_gate() -> seat_gate.SeatGate | None:
    """The process's seat gate, or None when the gate is switched off."""
    app = current_app
    if not app.config["SEAT_GATE_ENABLED"] or app.config["UNSAFE_SEAT_GUARDS_OFF"]:
        return None
    gate = app.extensions.get("turnout_gate")
    if gate is None:
        gate = seat_gate.SeatGate(redis_store.client, app.config["SEAT_HOLD_TTL_MS"])
        app.extensions["turnout_gate"] = gate
    return gate


def register(event_id: int, user_id: int, *, request_id: str | None = None) -> Outcome:
    """Give the person a confirmed seat, or raise why not.

    :raise NotFound: no such event.
    :raise EventFull: no seat left.
    :raise AlreadyRegistered: the person already has a place (or is taking one right now).
    :raise RegistrationClosed: the event has started.
    :raise RegistrationFailed: anything unexpected; nothing was written, no seat is held.
    """
    started = time.perf_counter()
    outcome = "failed"
    try:
        if current_app.config["UNSAFE_SEAT_GUARDS_OFF"]:
            result = _register_unguarded(event_id, user_id, request_id)
        else:
            result = _register(event_id, user_id, request_id)
        outcome = result.status
        return result
    except ServiceError as exc:
        outcome = _OUTCOME_OF.get(type(exc), "failed")
        raise
    finally:
        log.info("registration attempt", extra={
            "event_id": event_id, "user_id": user_id, "outcome": outcome,
            "request_id": request_id,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        })


_OUTCOME_OF = {
    EventFull: "rejected_full",
    AlreadyRegistered: "rejected_duplicate",
    RegistrationClosed: "rejected_full",
    NotFound: "not_found",
}


def _register(event_id: int, user_id: int, request_id: str | None) -> Outcome:
    gate = get_gate()
    token = uuid.uuid4().hex
    held = False
    if gate is not None:
        try:
            decision = gate.reserve(event_id, user_id, token)
        except seat_gate.GateUnavailable as exc:
            # The SQL guard alone still cannot oversell; Redis is only the fast path.
            log.warning("seat gate unavailable, using the SQL guard alone",
                        extra={"event_id": event_id, "error": str(exc), "request_id": request_id})
        except ServiceError:
            raise
        except Exception as exc:  # e.g. the database failed while the gate loaded the event
            log.exception("registration failed before a seat was held",
                          extra={"event_id": event_id, "user_id": user_id,
                                 "request_id": request_id})
            _reject(event_id, user_id, "failed", request_id, type(exc).__name__)
            raise RegistrationFailed() from exc
        else:
            if decision.status in (seat_gate.REGISTERED, seat_gate.PENDING):
                _reject(event_id, user_id, "rejected_duplicate", request_id, decision.status)
                raise AlreadyRegistered()
            if decision.status == seat_gate.FULL:
                _reject(event_id, user_id, "rejected_full", request_id, "gate")
                raise EventFull()
            held = True

    try:
        with write_session() as session:
            registration = _take_seat(session, event_id, user_id)
            record(session, event_id=event_id, user_id=user_id, action="register",
                   outcome="confirmed", request_id=request_id)
            registration_id = registration.id
    except NotFound:
        _release(gate, held, event_id, user_id, token)
        raise
    except (EventFull, AlreadyRegistered, RegistrationClosed) as exc:
        _release(gate, held, event_id, user_id, token)
        detail = "closed" if isinstance(exc, RegistrationClosed) else "sql"
        _reject(event_id, user_id, _OUTCOME_OF[type(exc)], request_id, detail)
        raise
    except Exception as exc:
        _release(gate, held, event_id, user_id, token)
        log.exception("registration failed; rolled back",
                      extra={"event_id": event_id, "user_id": user_id, "request_id": request_id})
        _reject(event_id, user_id, "failed", request_id, type(exc).__name__)
        raise RegistrationFailed() from exc

    if gate is not None:
        try:
            gate.confirm(event_id, user_id, token if held else None)
        except seat_gate.GateUnavailable:
            # Committed in SQL; the hold expires by itself and reconcile recounts.
            log.warning("seat confirmed in SQL but not in Redis",
                        extra={"event_id": event_id, "user_id": user_id})
    return Outcome(CONFIRMED, event_id, user_id, registration_id)


def _take_seat(session, event_id: int, user_id: int) -> Registration:
    """Write the registration and take the seat; the conditional UPDATE is the final guard."""
    event = session.scalar(select(Event).where(Event.id == event_id))
    if event is None:
        raise NotFound("That event does not exist.")
    if event.starts_at <= utcnow():
        raise RegistrationClosed()
    registration = session.scalar(
        select(Registration)
        .where(Registration.event_id == event_id, Registration.user_id == user_id)
        .with_for_update()
    )
    now = utcnow()
    if registration is not None and registration.is_live:
        raise AlreadyRegistered()
    try:
        if registration is None:
            registration = Registration(event_id=event_id, user_id=user_id, status=CONFIRMED,
                                        registered_at=now)
            session.add(registration)
        else:  # coming back after a cancellation reuses the person's row
            registration.status = CONFIRMED
            registration.registered_at = now
            registration.cancelled_at = None
            registration.position = None
        session.flush()
    except IntegrityError as exc:  # a concurrent attempt of the same person won
        raise AlreadyRegistered() from exc
    # Last, so the event row is locked only from here to the commit.
    taken = session.execute(
        update(Event)
        .where(Event.id == event_id, Event.confirmed_count < Event.capacity)
        .values(confirmed_count=Event.confirmed_count + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        raise EventFull()
    return registration


def _register_unguarded(event_id: int, user_id: int, request_id: str | None) -> Outcome:
    """TEST ONLY: the naive check-then-write, with no gate and no guarded UPDATE.

    It exists so the race tests can show they detect an oversell (a control
    run); create_app refuses to enable it outside TESTING.
    """
    with read_session() as s:
        row = s.execute(select(Event.confirmed_count, Event.capacity)
                        .where(Event.id == event_id)).one_or_none()
    if row is None:
        raise NotFound("That event does not exist.")
    seen, capacity = row
    if seen >= capacity:
        raise EventFull()
    time.sleep(current_app.config["UNSAFE_RACE_WINDOW_MS"] / 1000)
    try:
        with write_session() as s:
            registration = Registration(event_id=event_id, user_id=user_id, status=CONFIRMED)
            s.add(registration)
            s.flush()
            s.execute(update(Event).where(Event.id == event_id)
                      .values(confirmed_count=seen + 1)
                      .execution_options(synchronize_session=False))
            record(s, event_id=event_id, user_id=user_id, action="register",
                   outcome="confirmed", request_id=request_id)
    except IntegrityError as exc:
        raise AlreadyRegistered() from exc
    return Outcome(CONFIRMED, event_id, user_id, registration.id)


def _release(gate, held: bool, event_id: int, user_id: int, token: str) -> None:
    """Compensation: give back the hold of a failed attempt (idempotent by token)."""
    if not held:
        return
    try:
        gate.release(event_id, user_id, token)
    except seat_gate.GateUnavailable:
        log.warning("hold not released; it expires by itself",
                    extra={"event_id": event_id, "user_id": user_id})


def _reject(event_id, user_id, outcome, request_id, detail=None) -> None:
    record_alone(event_id=event_id, user_id=user_id, action="register", outcome=outcome,
                 request_id=request_id, detail=detail)


def cancel(event_id: int, user_id: int, *, request_id: str | None = None,
           action: str = "cancel") -> Outcome:
    """Cancel the person's place and free the seat.

    :raise NotRegistered: the person has no live place at this event.
    """
    try:
        with write_session() as session:
            registration = session.scalar(
                select(Registration)
                .where(Registration.event_id == event_id, Registration.user_id == user_id)
                .with_for_update()
            )
            if registration is None or not registration.is_live:
                raise NotRegistered()
            was = registration.status
            registration.status = CANCELLED
            registration.cancelled_at = utcnow()
            registration.position = None
            if was == CONFIRMED:
                session.execute(
                    update(Event).where(Event.id == event_id)
                    .values(confirmed_count=Event.confirmed_count - 1)
                    .execution_options(synchronize_session=False)
                )
            record(session, event_id=event_id, user_id=user_id, action=action,
                   outcome="cancelled", request_id=request_id)
    except ServiceError:
        raise
    except Exception as exc:
        log.exception("cancellation failed; rolled back",
                      extra={"event_id": event_id, "user_id": user_id, "request_id": request_id})
        raise Unavailable("Your registration could not be cancelled just now. "
                          "It is unchanged; please try again.") from exc

    gate = get_gate()
    if gate is not None:
        try:
            gate.vacate(event_id, user_id)
        except seat_gate.GateUnavailable:
            log.warning("seat freed in SQL but not in Redis; reconcile repairs it",
                        extra={"event_id": event_id, "user_id": user_id})
    log.info("cancellation", extra={"event_id": event_id, "user_id": user_id,
                                    "outcome": "cancelled", "request_id": request_id})
    return Outcome(CANCELLED, event_id, user_id)


# --- read side ---------------------------------------------------------------

@dataclass(frozen=True)
class Panel:
    """What the registration panel shows to one person for one event."""

    state: str  # open | registered | full | closed | anonymous | error
    event_id: int
    seats_left: int = 0
    message: str | None = None


def panel_for(event: Event, user) -> Panel:
    """The panel state from SQL, as the event and confirmation pages show it."""
    if event.starts_at <= utcnow():
        return Panel("closed", event.id)
    if user is not None and user.is_authenticated:
        status = current_registration_status(event.id, user.id)
        if status == CONFIRMED:
            return Panel("registered", event.id, event.seats_left)
    if event.is_full:
        return Panel("full", event.id)
    if user is None or not user.is_authenticated:
        return Panel("anonymous", event.id, event.seats_left)
    return Panel("open", event.id, event.seats_left)


def current_registration_status(event_id: int, user_id: int) -> str | None:
    return db.session.scalar(
        select(Registration.status).where(Registration.event_id == event_id,
                                          Registration.user_id == user_id)
    )


def live_registrations(user_id: int) -> list[Registration]:
    """The person's confirmed and waitlisted places, soonest event first."""
    return list(db.session.scalars(
        select(Registration)
        .join(Event, Event.id == Registration.event_id)
        .where(Registration.user_id == user_id, Registration.status.in_(LIVE_STATUSES))
        .options(selectinload(Registration.event).selectinload(Event.organizer))
        .order_by(Event.starts_at, Event.id)
    ))


def upcoming_count(user_id: int, now: datetime | None = None) -> int:
    return sum(1 for r in live_registrations(user_id) if r.event.starts_at > (now or utcnow()))
