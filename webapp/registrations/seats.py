"""Seats: the one module that takes and gives back seats and waitlist places.

Every function works in the caller's transaction (a session from
webapp.database.write_session). The event row is the lock every writer of an
event takes first, as an UPDATE of it or lock_event(); then the person's row
(lifecycle.current); then the waitlist: one order, so no deadlock.

The counts on the event row are the final guards: a seat only while
confirmed < capacity and nobody waits (a newcomer never passes the queue), a
waitlist place only while the waitlist is open and not full. A waitlist
position is the new waitlisted count, and leaving closes the gap: positions
stay 1..n. Nobody is promoted once the event has started.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from webapp.errors import Busy, EventFull, Invalid, NotFound
from webapp.events.models import MAX_CAPACITY, Event
from webapp.mail.models import MailKind, OutboxMessage
from webapp.mail.services import mail_row
from webapp.registrations import idempotency, lifecycle
from webapp.registrations.lifecycle import REGISTRATIONS, Place
from webapp.registrations.models import Status
from webapp.reports import activity
from webapp.reports.models import ActivityEntry
from webapp.sqltypes import utcnow

EVENTS = Event.__table__
ACTIVITY = ActivityEntry.__table__
OUTBOX = OutboxMessage.__table__

# The guarded UPDATEs, built once (plain Core: no compilation per request).
SEAT_IS_FREE = (EVENTS.c.confirmed_count < EVENTS.c.capacity, EVENTS.c.waitlisted_count == 0)
TAKE_SEAT = (
    update(EVENTS)
    .where(EVENTS.c.id == bindparam("event_id"), *SEAT_IS_FREE)
    .values(confirmed_count=EVENTS.c.confirmed_count + 1)
)
# A waitlist place only while no seat is free: a seat freed between TAKE_SEAT and this
# statement (a cancel that committed while we waited for its lock, PostgreSQL then
# re-reading the row) would otherwise stay empty beside a queue that starts with us.
NO_SEAT_IS_FREE = or_(EVENTS.c.confirmed_count >= EVENTS.c.capacity,
                      EVENTS.c.waitlisted_count > 0)
TAKE_WAITLIST_PLACE = (
    update(EVENTS)
    .where(EVENTS.c.id == bindparam("event_id"), EVENTS.c.waitlist_enabled.is_(True),
           or_(EVENTS.c.waitlist_capacity.is_(None),
               EVENTS.c.waitlisted_count < EVENTS.c.waitlist_capacity),
           NO_SEAT_IS_FREE)
    .values(waitlisted_count=EVENTS.c.waitlisted_count + 1)
    .returning(EVENTS.c.waitlisted_count)
)


SEAT_FREE_NOW = select(EVENTS.c.id).where(EVENTS.c.id == bindparam("event_id"), *SEAT_IS_FREE)
# A new round needs a commit that freed a seat and another that took it again in
# between our two statements: a few rounds are plenty.
TAKE_PLACE_ROUNDS = 5


def lock_event(session: Session, event_id: int) -> Event:
    """Lock the event row as an UPDATE of it would (FOR NO KEY UPDATE on PostgreSQL).

    Not FOR UPDATE: that also waits for the KEY SHARE locks the foreign-key
    checks of every INSERT naming the event take (registrations, activity
    rows, emails), and a KEY SHARE lock that must follow an updated version of
    the row can then wait for us in turn: a deadlock (seen in the churn test).

    :raise NotFound: no such event.
    """
    event = session.scalar(select(Event).where(Event.id == event_id)
                           .with_for_update(key_share=True)
                           .execution_options(populate_existing=True))
    if event is None:
        raise NotFound("That event does not exist.")
    return event


def take_place(session: Session, event_id: int) -> tuple[Status, int | None]:
    """A seat, else a waitlist place: (status, waitlist position).

    :raise EventFull: neither is left.
    :raise Busy: seats came free and were taken again between our statements, round
      after round (nothing written).
    """
    connection = session.connection()
    params = {"event_id": event_id}
    for _ in range(TAKE_PLACE_ROUNDS):
        if connection.execute(TAKE_SEAT, params).rowcount == 1:
            return Status.CONFIRMED, None
        position = connection.execute(TAKE_WAITLIST_PLACE, params).scalar_one_or_none()
        if position is not None:
            return Status.WAITLISTED, position
        # Neither: full with no waitlist place, unless a seat came free in between.
        if not connection.execute(SEAT_FREE_NOW, params).scalar():
            raise EventFull()
    # Seats kept coming free and going again: "full" might not be true; nothing was written.
    raise Busy("We are very busy right now and could not register you. Nothing was saved; "
               "please try again.")


def give_back(session: Session, event_id: int, place: Place) -> None:
    """The seat or waitlist place `place` held is free again (the caller locked the event)."""
    if place.status == Status.CONFIRMED:
        _shift_counts(session, event_id, confirmed=-1)
    else:
        _close_gap(session, event_id, after=place.position, by=1)
        _shift_counts(session, event_id, waitlisted=-1)


def fill_from_waitlist(session: Session, event_id: int,
                       request_id: str | None = None) -> list[int]:
    """Promote waitlisted people, first in line first, into free seats: who moved up.

    The caller holds the event's lock. Nobody is promoted once the event has started.
    """
    capacity, confirmed, waiting, starts_at = session.execute(
        select(EVENTS.c.capacity, EVENTS.c.confirmed_count, EVENTS.c.waitlisted_count,
               EVENTS.c.starts_at).where(EVENTS.c.id == event_id)).one()
    free = capacity - confirmed
    if free <= 0 or waiting == 0 or starts_at <= utcnow():
        return []
    heads = session.execute(
        select(REGISTRATIONS.c.id, REGISTRATIONS.c.user_id, REGISTRATIONS.c.position)
        .where(REGISTRATIONS.c.event_id == event_id,
               REGISTRATIONS.c.status == Status.WAITLISTED)
        .order_by(REGISTRATIONS.c.position).limit(free).with_for_update()).all()
    for head in heads:
        lifecycle.move(session, event_id=event_id, user_id=head.user_id, to=Status.CONFIRMED,
                       was=Place(head.id, Status.WAITLISTED, head.position),
                       request_id=request_id)
    _close_gap(session, event_id, after=0, by=len(heads))
    _shift_counts(session, event_id, confirmed=len(heads), waitlisted=-len(heads))
    return [head.user_id for head in heads]


def set_limits(session: Session, event: Event, *, capacity: int, waitlist_enabled: bool,
               waitlist_capacity: int | None) -> None:
    """New capacity and waitlist settings on the locked event: never below who holds a
    place already. fill_from_waitlist() then gives any freed seats away.

    :raise Invalid: capacity out of range (invalid_capacity) or below the confirmed count
        (capacity_below_confirmed); a waitlist limit below zero (invalid_waitlist_capacity)
        or below the number waiting (waitlist_capacity_below_waiting).
    """
    if not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
        raise Invalid(f"Capacity must be a whole number from 1 to {MAX_CAPACITY:,}.",
                      code="invalid_capacity")
    if capacity < event.confirmed_count:
        raise Invalid(f"Capacity cannot be lower than the {event.confirmed_count} people "
                      "already confirmed. Cancel registrations first.",
                      code="capacity_below_confirmed")
    if waitlist_capacity is not None and waitlist_capacity != event.waitlist_capacity:
        if not isinstance(waitlist_capacity, int) or waitlist_capacity < 0:
            raise Invalid("Waitlist capacity must be a whole number, 0 or more.",
                          code="invalid_waitlist_capacity")
        if waitlist_capacity < event.waitlisted_count:
            raise Invalid(f"Waitlist capacity cannot be lower than the "
                          f"{event.waitlisted_count} people already waiting.",
                          code="waitlist_capacity_below_waiting")
    event.capacity = capacity
    event.waitlist_enabled = waitlist_enabled
    event.waitlist_capacity = waitlist_capacity
    session.flush()


def _close_gap(session: Session, event_id: int, *, after: int, by: int) -> None:
    """Everyone behind `after` moves up `by` places: positions stay 1..n."""
    if by:
        session.execute(
            update(REGISTRATIONS)
            .where(REGISTRATIONS.c.event_id == event_id,
                   REGISTRATIONS.c.status == Status.WAITLISTED,
                   REGISTRATIONS.c.position > after)
            .values(position=REGISTRATIONS.c.position - by))


def _shift_counts(session: Session, event_id: int, *, confirmed: int = 0,
                  waitlisted: int = 0) -> None:
    session.execute(
        update(EVENTS).where(EVENTS.c.id == event_id)
        .values(confirmed_count=EVENTS.c.confirmed_count + confirmed,
                waitlisted_count=EVENTS.c.waitlisted_count + waitlisted))


# --- a newcomer's seat in one statement (PostgreSQL) ------------------------------

def _values(prefix: str, table, columns: list[str]) -> list:
    """Typed bind parameters named prefix + column, to insert one row's values."""
    return [bindparam(prefix + name, type_=table.c[name].type) for name in columns]


@cache
def _seat_newcomer_statement(keyed: bool):
    """TAKE_SEAT, guarded also by the start and the person's absence, and the three rows
    of lifecycle.move() for (None -> confirmed), as data-modifying CTEs of ONE INSERT;
    `keyed`: with the Idempotency-Key's row too (webapp/registrations/idempotency.py)."""
    seat = (TAKE_SEAT
            .where(EVENTS.c.starts_at > bindparam("now"),
                   ~select(REGISTRATIONS.c.id)
                   .where(REGISTRATIONS.c.event_id == bindparam("event_id"),
                          REGISTRATIONS.c.user_id == bindparam("user_id")).exists())
            .values(updated_at=bindparam("now"))
            .returning(EVENTS.c.id).cte("seat"))
    columns = [c.name for c in REGISTRATIONS.columns if c.name not in ("id", "event_id")]
    registration = (insert(REGISTRATIONS)
                    .from_select(["event_id", *columns],
                                 select(seat.c.id, *_values("r_", REGISTRATIONS, columns)))
                    .returning(REGISTRATIONS.c.id).cte("registration"))
    columns = [c.name for c in ACTIVITY.columns if c.name != "id"]
    entry = (insert(ACTIVITY)
             .from_select(columns, select(*_values("a_", ACTIVITY, columns))
                          .select_from(registration)).cte("entry"))
    columns = [c for c in mail_row(MailKind.CONFIRMATION, event_id=0, user_id=0,
                                   registration_id=0, now=utcnow()) if c != "registration_id"]
    statement = (insert(OUTBOX)
                 .from_select(["registration_id", *columns],
                              select(registration.c.id, *_values("m_", OUTBOX, columns)))
                 .returning(OUTBOX.c.registration_id, OUTBOX.c.id)
                 .add_cte(entry))
    if keyed:
        columns = [c.name for c in idempotency.KEYS.columns if c.name != "registration_id"]
        statement = statement.add_cte(
            insert(idempotency.KEYS)
            .from_select(["registration_id", *columns],
                         select(registration.c.id, *_values("k_", idempotency.KEYS, columns)))
            .cte("retry_key"))
    return statement


def seat_newcomer(connection, event_id: int, user_id: int, request_id: str | None, *,
                  now: datetime, retry: idempotency.Retry | None = None
                  ) -> tuple[int, int] | None:
    """The commonest case of a rush, on PostgreSQL, in ONE statement that is its own
    transaction (an autocommit connection): a newcomer takes a free seat while nobody
    waits, with the registration, its activity entry and its email. The event row is
    locked only while the server runs the statement and flushes its commit, never
    across a round trip to this process. (registration id, outbox id), or None when
    any guard failed and nothing was written: the caller goes the general way, which
    tells why.

    :raise IntegrityError: a concurrent attempt of the same person won the unique index,
        or `retry`'s key was used before.
    """
    step = lifecycle.TRANSITIONS[(None, Status.CONFIRMED)]
    rows = {
        "r_": lifecycle.registration_row(event_id=event_id, user_id=user_id,
                                         to=Status.CONFIRMED, now=now),
        "a_": activity.entry(event_id=event_id, user_id=user_id, action=step.action,
                             outcome=step.outcome, request_id=request_id, occurred_at=now),
        "m_": mail_row(step.mail, event_id=event_id, user_id=user_id, registration_id=0,
                       now=now),
    }
    if retry is not None:
        rows["k_"] = idempotency.row(retry, event_id=event_id, user_id=user_id,
                                     outcome=Status.CONFIRMED, registered_at=now, now=now)
    params = {prefix + name: value for prefix, row in rows.items()
              for name, value in row.items()}
    params.update(event_id=event_id, user_id=user_id, now=now)
    return connection.execute(_seat_newcomer_statement(retry is not None),
                              params).one_or_none()
