"""The registration service: the only code that gives or takes a seat.

register(): Redis gate (hold) -> one SQL transaction (row + activity + outbox
email + guarded seat count) -> confirm the hold, or release it if anything failed.
cancel(): one SQL transaction (with the emails it causes), then the seat is
freed in Redis. Email jobs are enqueued only after the commit (webapp.mail).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from flask import current_app
from sqlalchemy import bindparam, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from webapp.database import autocommit_connection, read_session, write_session
from webapp.errors import (
    AlreadyRegistered,
    Conflict,
    EventFull,
    Invalid,
    NotFound,
    NotRegistered,
    ServiceError,
    Unavailable,
)
from webapp.events.models import MAX_CAPACITY, Event
from webapp.extensions import db, redis_store
from webapp.mail import models as outbox
from webapp.mail.services import enqueue, insert_mail, mail_due_at, queue_mail
from webapp.registrations import gate as seat_gate
from webapp.registrations.models import (
    CANCELLED,
    CONFIRMED,
    LIVE_STATUSES,
    WAITLISTED,
    Registration,
)
from webapp.reports import journal
from webapp.reports.services import insert_entry, record, record_alone
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
    previous: str | None = None  # for a cancellation: what was cancelled
    promoted: tuple[int, ...] = ()


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
            if decision.status in (seat_gate.REGISTERED, seat_gate.WAITLISTED_ALREADY,
                                   seat_gate.PENDING):
                _reject(event_id, user_id, "rejected_duplicate", request_id, decision.status)
                raise AlreadyRegistered()
            if decision.status == seat_gate.FULL:
                _reject(event_id, user_id, "rejected_full", request_id, "gate")
                raise EventFull()
            held = True

    try:
        placed = _seat_newcomer_at_once(event_id, user_id, request_id)
        if placed is None:
            with write_session() as session:
                placed = _place(session, event_id, user_id, request_id)
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
            gate.confirm(event_id, user_id, token if held else None, placed.status)
        except seat_gate.GateUnavailable:
            # Committed in SQL; the hold expires by itself and reconcile recounts.
            log.warning("place committed in SQL but not in Redis",
                        extra={"event_id": event_id, "user_id": user_id})
    return Outcome(placed.status, event_id, user_id, placed.id, placed.position)


class Placed(NamedTuple):
    """What register() committed: the registration's status, id and waitlist position."""

    status: str
    id: int
    position: int | None = None


def _place(session, event_id: int, user_id: int, request_id: str | None) -> Placed:
    """Write the person's registration, its activity entry and its email: a seat, else a
    waitlist place, else EventFull.

    The conditional UPDATEs on the event row are the final guards: a seat only
    while confirmed < capacity and nobody waits (newcomers never pass the
    queue), a waitlist place only while the waitlist is open and not full. The
    waitlist position is the new waitlisted count, so positions stay 1..n.
    """
    # One round trip, no lock: does the event exist, has it started, has this
    # person a row here already (a cancelled one comes back through the slow path)?
    known = session.connection().execute(
        _KNOWN, {"event_id": event_id, "user_id": user_id}).one_or_none()
    if known is None:
        raise NotFound("That event does not exist.")
    if known[0] <= utcnow():
        raise RegistrationClosed()
    if known[1] is None:
        return _place_newcomer(session, event_id, user_id, request_id)
    registration = _place_returning(session, event_id, user_id)
    record(session, event_id=event_id, user_id=user_id, action="register",
           outcome=registration.status, request_id=request_id)
    queue_mail(session, _MAIL_OF[registration.status], registration,
               position=registration.position)
    return Placed(registration.status, registration.id, registration.position)


_MAIL_OF = {CONFIRMED: outbox.CONFIRMATION, WAITLISTED: outbox.WAITLISTED}
_EVENTS = Event.__table__
_REGISTRATIONS = Registration.__table__

# The hot path's statements, built once (plain Core: no ORM compilation per request).
_KNOWN = (
    select(_EVENTS.c.starts_at,
           select(_REGISTRATIONS.c.id)
           .where(_REGISTRATIONS.c.event_id == bindparam("event_id"),
                  _REGISTRATIONS.c.user_id == bindparam("user_id"))
           .scalar_subquery())
    .where(_EVENTS.c.id == bindparam("event_id"))
)
_INSERT_REGISTRATION = insert(_REGISTRATIONS).returning(_REGISTRATIONS.c.id)
_TAKE_SEAT = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"),
           _EVENTS.c.confirmed_count < _EVENTS.c.capacity,
           _EVENTS.c.waitlisted_count == 0)
    .values(confirmed_count=_EVENTS.c.confirmed_count + 1)
)
_TAKE_WAITLIST_PLACE = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"), _EVENTS.c.waitlist_enabled.is_(True),
           or_(_EVENTS.c.waitlist_capacity.is_(None),
               _EVENTS.c.waitlisted_count < _EVENTS.c.waitlist_capacity))
    .values(waitlisted_count=_EVENTS.c.waitlisted_count + 1)
    .returning(_EVENTS.c.waitlisted_count)
)


# The commonest case of a rush, on PostgreSQL, in ONE statement that is its own
# transaction: a newcomer takes a free seat while nobody waits, with the registration,
# its activity entry and its email. The UPDATE is the guard, as in _place_newcomer, and
# the event row (every registration of the event queues on it) is locked only while the
# server runs the statement and flushes its commit: never across a round trip to this
# process. If any condition fails, nothing is written and _place goes the general way,
# which tells why (no event, started, a returning person, the waitlist, full). Two
# attempts of one person: the unique (event, person) index fails the second.
_SEAT_NEWCOMER = text("""
WITH seat AS (
    UPDATE events SET confirmed_count = confirmed_count + 1, updated_at = :now
    WHERE id = :event_id AND confirmed_count < capacity AND waitlisted_count = 0
      AND starts_at > :now
      AND NOT EXISTS (SELECT 1 FROM registrations
                      WHERE event_id = :event_id AND user_id = :user_id)
    RETURNING id
), registration AS (
    INSERT INTO registrations (event_id, user_id, status, registered_at, updated_at)
    SELECT id, :user_id, 'confirmed', :now, :now FROM seat
    RETURNING id
), entry AS (
    INSERT INTO activity_log (occurred_at, event_id, user_id, action, outcome, request_id)
    SELECT :now, :event_id, :user_id, 'register', 'confirmed', CAST(:request_id AS text)
    FROM registration
)
INSERT INTO outbox (kind, event_id, user_id, registration_id, status, attempts,
                    created_at, due_at)
SELECT 'confirmation', :event_id, :user_id, id, 'pending', 0, :now, :due_at
FROM registration
RETURNING registration_id, id
""")


def _seat_newcomer_at_once(event_id: int, user_id: int, request_id: str | None) -> Placed | None:
    """PostgreSQL: _SEAT_NEWCOMER, committed; None when it wrote nothing or on SQLite."""
    if db.engine.dialect.name != "postgresql":
        return None
    now = utcnow()
    try:
        with autocommit_connection() as connection:
            row = connection.execute(_SEAT_NEWCOMER, {
                "event_id": event_id, "user_id": user_id, "request_id": request_id,
                "now": now, "due_at": mail_due_at(now)}).one_or_none()
    except IntegrityError as exc:
        _raise_if_duplicate(exc)
        raise
    if row is None:
        return None
    registration_id, outbox_id = row
    enqueue([outbox_id])  # committed already; if Redis fails, the sweeper enqueues it
    return Placed(CONFIRMED, registration_id)


def _raise_if_duplicate(exc: IntegrityError) -> None:
    """A concurrent attempt of the same person won the unique (event, person) index."""
    message = str(exc.orig)  # PostgreSQL names the index; SQLite names the columns
    if ("uq_registrations_event_user" in message
            or "registrations.event_id, registrations.user_id" in message):
        raise AlreadyRegistered() from exc


def _place_newcomer(session, event_id: int, user_id: int, request_id: str | None) -> Placed:
    """A person's first registration for the event, in plain statements (no unit of work:
    its bookkeeping cost more than the SQL). On PostgreSQL a free seat took the
    one-statement way first (_SEAT_NEWCOMER); this is the waitlist, full, and SQLite.

    The guarded UPDATE of the event row comes first, as every writer of the
    event takes that row first (the one-statement seat, cancel(), resize(), a
    returning person): one lock order, so no deadlock, even between two
    attempts of the same person (the second then fails on the unique index).
    """
    if _take_seat(session, event_id):
        status, position = CONFIRMED, None
    else:
        position = _take_waitlist_place(session, event_id)
        if position is None:
            raise EventFull()
        status = WAITLISTED
    try:
        registration_id = session.connection().execute(_INSERT_REGISTRATION, {
            "event_id": event_id, "user_id": user_id, "status": status, "position": position,
            "registered_at": utcnow()}).scalar_one()
    except IntegrityError as exc:  # the rollback gives the seat back
        _raise_if_duplicate(exc)
        raise
    insert_entry(session, event_id=event_id, user_id=user_id, action="register",
                 outcome=status, request_id=request_id)
    insert_mail(session, _MAIL_OF[status], event_id=event_id, user_id=user_id,
                registration_id=registration_id, position=position)
    return Placed(status, registration_id, position)


def _place_returning(session, event_id: int, user_id: int) -> Registration:
    """A person who has a row for this event already (cancelled, or racing themselves)."""
    # The event row first, as cancel() and resize() take it: locking the person's
    # row first would deadlock against a concurrent cancel of the same person.
    event = _lock_event(session, event_id)
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
    except IntegrityError as exc:
        _raise_if_duplicate(exc)
        raise
    if _take_seat(session, event_id):
        return registration
    position = _take_waitlist_place(session, event_id)
    if position is None:
        raise EventFull()
    registration.status = WAITLISTED
    registration.position = position
    session.flush()
    return registration


def _take_seat(session, event_id: int) -> bool:
    """The final guard: one more confirmed seat, only while one is free and nobody waits."""
    return session.connection().execute(_TAKE_SEAT, {"event_id": event_id}).rowcount == 1


def _take_waitlist_place(session, event_id: int) -> int | None:
    """One more waitlist place while the waitlist is open and not full: its position."""
    return session.connection().execute(
        _TAKE_WAITLIST_PLACE, {"event_id": event_id}).scalar_one_or_none()


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
    """The activity entry of an attempt that changed nothing: through the journal (written
    to SQL in batches, webapp/reports/journal.py), or its own transaction when that is off."""
    entry = {"event_id": event_id, "user_id": user_id, "action": "register",
             "outcome": outcome, "request_id": request_id, "detail": detail}
    if current_app.config["ACTIVITY_JOURNAL"]:
        journal.append(**entry)
    else:
        record_alone(**entry)


def cancel(event_id: int, user_id: int, *, request_id: str | None = None,
           action: str = "cancel") -> Outcome:
    """Cancel the person's seat or waitlist place; a freed seat goes to the head of the queue.

    One SQL transaction cancels, promotes in FIFO order and closes the gap in
    the waitlist positions; Redis mirrors it only after the commit, in one
    script, so a failed transaction leaves both sides exactly as they were.

    :raise NotRegistered: the person has no live place at this event.
    """
    try:
        with write_session() as session:
            # The event row first: every writer that moves other people's rows
            # takes the locks in the same order, so two cancellations cannot deadlock.
            _lock_event(session, event_id)
            registration = session.scalar(
                select(Registration)
                .where(Registration.event_id == event_id, Registration.user_id == user_id)
                .with_for_update()
            )
            if registration is None or not registration.is_live:
                raise NotRegistered()
            was, position = registration.status, registration.position
            registration.status = CANCELLED
            registration.cancelled_at = utcnow()
            registration.position = None
            session.flush()
            if was == CONFIRMED:
                _shift_counts(session, event_id, confirmed=-1)
            else:
                _close_gap(session, event_id, after=position, by=1)
                _shift_counts(session, event_id, waitlisted=-1)
            left = "cancel" if was == CONFIRMED else "leave_waitlist"
            record(session, event_id=event_id, user_id=user_id,
                   action=action if action != "cancel" else left,
                   outcome="cancelled", request_id=request_id)
            # The waitlist position they left marks a waitlist cancellation (no calendar part).
            queue_mail(session, outbox.CANCELLATION, registration,
                       position=position if was == WAITLISTED else None)
            promoted = _fill_from_waitlist(session, event_id, request_id)
    except ServiceError:
        raise
    except Exception as exc:
        log.exception("cancellation failed; rolled back",
                      extra={"event_id": event_id, "user_id": user_id, "request_id": request_id})
        raise Unavailable("Your registration could not be cancelled just now. "
                          "It is unchanged; please try again.") from exc

    _mirror(event_id, user_id, promoted)
    log.info("cancellation", extra={"event_id": event_id, "user_id": user_id,
                                    "outcome": "cancelled", "promoted": promoted,
                                    "request_id": request_id})
    return Outcome(CANCELLED, event_id, user_id, previous=was, promoted=tuple(promoted))


UNCHANGED = object()


def resize(event_id: int, capacity: int, *, waitlist_enabled: bool | None = None,
           waitlist_capacity: object = UNCHANGED, request_id: str | None = None) -> list[int]:
    """Change an event's capacity (and waitlist settings); returns who was promoted.

    Raising capacity promotes from the waitlist in order, in the same transaction.
    :raise Invalid: capacity out of range or below the confirmed count.
    """
    if not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
        raise Invalid(f"Capacity must be a whole number from 1 to {MAX_CAPACITY:,}.",
                      code="invalid_capacity")
    if waitlist_capacity is not UNCHANGED and waitlist_capacity is not None and (
            not isinstance(waitlist_capacity, int) or waitlist_capacity < 0):
        raise Invalid("Waitlist capacity must be a whole number, 0 or more.",
                      code="invalid_waitlist_capacity")
    with write_session() as session:
        event = _lock_event(session, event_id)
        if capacity < event.confirmed_count:
            raise Invalid(f"Capacity cannot be lower than the {event.confirmed_count} people "
                          "already confirmed. Cancel registrations first.",
                          code="capacity_below_confirmed")
        event.capacity = capacity
        if waitlist_enabled is not None:
            event.waitlist_enabled = waitlist_enabled
        if waitlist_capacity is not UNCHANGED:
            event.waitlist_capacity = waitlist_capacity
        session.flush()
        promoted = _fill_from_waitlist(session, event_id, request_id)
    gate = get_gate()
    if gate is not None:
        try:  # capacity and settings come from SQL in one versioned rebuild
            gate.rebuild(event_id, force=True)
        except seat_gate.GateUnavailable:
            log.warning("capacity changed in SQL but not in Redis; reconcile repairs it",
                        extra={"event_id": event_id})
    return promoted


def fill_from_waitlist(event_id: int, request_id: str | None = None) -> list[int]:
    """Give any free seats to the head of the waitlist (self-healing; reconcile calls it)."""
    with write_session() as session:
        _lock_event(session, event_id)
        promoted = _fill_from_waitlist(session, event_id, request_id)
    if promoted:
        _mirror(event_id, None, promoted)
    return promoted


def _fill_from_waitlist(session, event_id: int, request_id: str | None) -> list[int]:
    """Promote waitlisted people, first in line first, into free seats. Caller holds the lock."""
    event = session.get(Event, event_id, populate_existing=True)
    free = event.capacity - event.confirmed_count
    if free <= 0 or event.waitlisted_count == 0:
        return []
    heads = list(session.scalars(
        select(Registration)
        .where(Registration.event_id == event_id, Registration.status == WAITLISTED)
        .order_by(Registration.position)
        .limit(free)
        .with_for_update()
    ))
    for registration in heads:
        registration.status = CONFIRMED
        registration.position = None
        record(session, event_id=event_id, user_id=registration.user_id, action="promote",
               outcome="promoted", request_id=request_id)
        queue_mail(session, outbox.PROMOTED, registration)
    session.flush()
    _close_gap(session, event_id, after=0, by=len(heads))
    _shift_counts(session, event_id, confirmed=len(heads), waitlisted=-len(heads))
    return [r.user_id for r in heads]


def _lock_event(session, event_id: int) -> Event:
    """Lock the event row as an UPDATE of it would (FOR NO KEY UPDATE on PostgreSQL).

    Not FOR UPDATE: that also waits for the KEY SHARE locks the foreign-key
    checks of every INSERT naming the event take (registrations, activity
    rows, emails), and a KEY SHARE lock that must follow an updated version of
    the row can then wait for us in turn: a deadlock (seen in the churn test).
    """
    event = session.scalar(select(Event).where(Event.id == event_id)
                           .with_for_update(key_share=True))
    if event is None:
        raise NotFound("That event does not exist.")
    return event


def _close_gap(session, event_id: int, *, after: int, by: int) -> None:
    """Everyone behind `after` moves up `by` places: positions stay 1..n."""
    if by:
        session.execute(
            update(Registration)
            .where(Registration.event_id == event_id, Registration.status == WAITLISTED,
                   Registration.position > after)
            .values(position=Registration.position - by)
            .execution_options(synchronize_session=False)
        )


def _shift_counts(session, event_id: int, *, confirmed: int = 0, waitlisted: int = 0) -> None:
    session.execute(
        update(Event).where(Event.id == event_id)
        .values(confirmed_count=Event.confirmed_count + confirmed,
                waitlisted_count=Event.waitlisted_count + waitlisted)
        .execution_options(synchronize_session=False)
    )


def _mirror(event_id: int, user_id: int | None, promoted: list[int]) -> None:
    """After the commit: the leaver out of Redis, the promoted into seats, in one script."""
    gate = get_gate()
    if gate is None:
        return
    try:
        gate.vacate(event_id, user_id, promoted)
    except seat_gate.GateUnavailable:
        log.warning("change committed in SQL but not in Redis; reconcile repairs it",
                    extra={"event_id": event_id, "user_id": user_id, "promoted": promoted})


# --- read side ---------------------------------------------------------------

@dataclass(frozen=True)
class Panel:
    """What the registration panel shows to one person for one event."""

    # open | registered | waitlisted | join_waitlist | full | closed | anonymous | error
    state: str
    event_id: int
    seats_left: int = 0
    message: str | None = None
    position: int | None = None


def panel_for(event: Event, user) -> Panel:
    """The panel state from SQL, as the event and confirmation pages show it."""
    signed_in = user is not None and user.is_authenticated
    if signed_in:
        registration = db.session.scalar(
            select(Registration).where(Registration.event_id == event.id,
                                       Registration.user_id == user.id))
        if registration is not None and registration.status == CONFIRMED:
            return Panel("registered", event.id, event.seats_left)
        if registration is not None and registration.status == WAITLISTED:
            return Panel("waitlisted", event.id, position=registration.position)
    if event.starts_at <= utcnow():
        return Panel("closed", event.id)
    if event.is_full or event.waitlisted_count > 0:
        waitlist_open = event.waitlist_enabled and (
            event.waitlist_capacity is None or event.waitlisted_count < event.waitlist_capacity)
        return Panel("join_waitlist" if waitlist_open else "full", event.id)
    return Panel("open" if signed_in else "anonymous", event.id, event.seats_left)


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
