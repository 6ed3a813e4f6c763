"""One registration attempt, from the click to the answer: register().

The Redis gate holds a place (or refuses: full, already registered), one SQL
write commits it (seats.take_place, lifecycle.move; on PostgreSQL a newcomer's
free seat is seats.seat_newcomer, one statement), then the hold becomes what
SQL decided, or is given back if anything failed. Around that, the answers stay
true under faults: a database that cannot answer in time is 503 busy (nothing
saved), a link lost during COMMIT is looked up before answering (_find_out),
and an Idempotency-Key gets its first answer again (idempotency.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from webapp.database import (
    CommitUnknown,
    autocommit_connection,
    read_session,
    unavailable,
    write_session,
)
from webapp.errors import (
    AlreadyRegistered,
    Busy,
    Conflict,
    EventFull,
    NotFound,
    OutcomeUnknown,
    RegistrationClosed,
    RegistrationFailed,
    ServiceError,
)
from webapp.extensions import db
from webapp.mail.services import enqueue
from webapp.registrations import gate as seat_gate
from webapp.registrations import idempotency, lifecycle, seats, stalls
from webapp.registrations.gate import get_gate
from webapp.registrations.lifecycle import REGISTRATIONS
from webapp.registrations.models import LIVE, Status
from webapp.reports.journal import record_attempt
from webapp.reports.models import Action
from webapp.reports.models import Outcome as Logged
from webapp.sqltypes import utcnow

log = logging.getLogger("turnout.registrations")


@dataclass(frozen=True)
class Outcome:
    status: Status
    event_id: int
    user_id: int
    registration_id: int | None = None
    position: int | None = None
    previous: Status | None = None  # for a cancellation: what was cancelled
    promoted: tuple[int, ...] = ()
    registered_at: datetime | None = None
    replayed: bool = False  # the first answer to this Idempotency-Key, given again
    before: Any = None  # what register()'s before_write returned


# What an attempt that placed nobody is recorded as (anything else: failed).
_REFUSED = {
    EventFull: Logged.REJECTED_FULL,
    RegistrationClosed: Logged.REJECTED_FULL,
    AlreadyRegistered: Logged.REJECTED_DUPLICATE,
}
REGISTER_BUSY = ("We are very busy right now and could not register you. Nothing was "
                 "saved; please try again in a few seconds.")


def register(event_id: int, user_id: int, *, request_id: str | None = None,
             retry: idempotency.Retry | None = None,
             before_write: Callable[[], Any] | None = None) -> Outcome:
    """Give the person a confirmed seat, else a waitlist place, or raise why not.

    With `retry` (an Idempotency-Key), an attempt that repeats an earlier one with
    the same key answers what that one answered and changes nothing (replayed).
    `before_write()` runs once the gate let the person through and before anything
    is written; what it returns is Outcome.before (the API reads the event there:
    never for the people the gate turns away, and never after the commit, when a
    failed read would turn a saved registration into an error).

    :raise NotFound: no such event.
    :raise EventFull: no seat and no waitlist place left.
    :raise AlreadyRegistered: the person already has a place.
    :raise RegistrationClosed: the event has started.
    :raise IdempotencyKeyReused: the key was used for a different request.
    :raise Busy: the database could not answer in time; nothing was saved.
    :raise OutcomeUnknown: the link broke during the commit and nobody could tell since.
    :raise RegistrationFailed: anything unexpected; nothing was written, no seat is held.
    """
    started = time.perf_counter()
    logged = "failed"
    try:
        try:
            answer = retry and idempotency.kept(user_id, retry)
            result = (_replay(answer, user_id) if answer
                      else _register(event_id, user_id, request_id, retry, before_write))
        except (Conflict, idempotency.KeyTaken) as exc:
            if retry is None:
                raise
            result = _answer_again(event_id, user_id, retry, exc)
        logged = "replayed" if result.replayed else result.status
        return result
    except NotFound:
        logged = "not_found"
        raise
    except ServiceError as exc:
        logged = _REFUSED.get(type(exc), exc.code)
        raise
    finally:
        log.info("registration attempt", extra={
            "event_id": event_id, "user_id": user_id, "outcome": str(logged),
            "request_id": request_id,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2)})


def _register(event_id: int, user_id: int, request_id: str | None,
              retry: idempotency.Retry | None,
              before_write: Callable[[], Any] | None = None) -> Outcome:
    gate = get_gate()
    token = gate.token() if gate is not None else ""
    held = _hold(gate, event_id, user_id, token, request_id, retry)
    before = None
    try:
        if before_write is not None:
            before = before_write()
        with stalls.watch(event_id):
            status, registration_id, position, now = _place(event_id, user_id, request_id,
                                                             retry)
    except CommitUnknown as exc:
        return replace(_find_out(gate, held, event_id, user_id, token, request_id, exc),
                       before=before)
    except Exception as exc:
        _release(gate, held, event_id, user_id, token)
        if isinstance(exc, idempotency.KeyTaken):
            raise
        if isinstance(exc, AlreadyRegistered) and (placed := _placed_by(user_id, retry)):
            raise idempotency.KeyTaken(placed) from exc  # the first answer is given again
        _refuse(exc, event_id, user_id, request_id)
    _confirm(gate, held, event_id, user_id, token, status)
    if retry is not None:
        idempotency.keep(user_id, retry, idempotency.Answer(
            status, event_id, registration_id, position, now))
    return Outcome(status, event_id, user_id, registration_id, position, registered_at=now,
                   before=before)


def _answer_again(event_id: int, user_id: int, retry: idempotency.Retry,
                  exc: Exception) -> Outcome:
    """A refusal, or a key used before: the first answer to the key if there is one, else
    this refusal, kept as the key's answer for the next retry."""
    if isinstance(exc, idempotency.KeyTaken):
        answer = exc.answer or idempotency.first_answer(user_id, retry)
        if answer is None:  # forgotten just now (a day old): judged again next time
            raise Busy(REGISTER_BUSY) from exc
    else:
        answer = idempotency.refuse_once(user_id, retry, idempotency.Answer(
            exc.code, event_id))
        if answer is None:
            raise exc
    return _replay(answer, user_id)


def _replay(answer: idempotency.Answer, user_id: int) -> Outcome:
    """The first answer to a key, given again: its place, or its refusal raised again."""
    refused = idempotency.refusal(answer)
    if refused is not None:
        raise refused
    return Outcome(Status(answer.outcome), answer.event_id, user_id, answer.registration_id,
                   answer.position, registered_at=answer.registered_at, replayed=True)


def _confirm(gate, held: bool, event_id: int, user_id: int, token: str,
             status: Status) -> None:
    """After the commit: the hold becomes what SQL decided."""
    if gate is None:
        return
    try:
        gate.confirm(event_id, user_id, token if held else None, status)
    except seat_gate.GateUnavailable:
        # Committed in SQL; the hold expires by itself and reconcile recounts.
        log.warning("place committed in SQL but not in Redis",
                    extra={"event_id": event_id, "user_id": user_id})


def _placed_by(user_id: int, retry: idempotency.Retry | None) -> idempotency.Answer | None:
    """The place this key's first attempt got, when this is a retry of it (then the
    person's place is that attempt's, and this one is not a new attempt turned away)."""
    answer = retry and idempotency.first_answer(user_id, retry)
    return answer if answer and idempotency.refusal(answer) is None else None


def _hold(gate, event_id: int, user_id: int, token: str, request_id: str | None,
          retry: idempotency.Retry | None = None) -> bool:
    """Ask the gate for a hold: True if one is held, False when SQL alone decides (no
    gate, no Redis, or the gate is not sure).

    :raise EventFull, AlreadyRegistered: the gate refused, recorded.
    :raise RegistrationFailed: the gate could not load the event from SQL.
    """
    if gate is None:
        return False
    try:
        decision = gate.reserve(event_id, user_id, token)
    except seat_gate.GateUnavailable as exc:
        # The SQL guard alone still cannot oversell; Redis is only the fast path.
        log.warning("seat gate unavailable, using the SQL guard alone",
                    extra={"event_id": event_id, "error": str(exc), "request_id": request_id})
        return False
    except Exception as exc:  # e.g. NotFound, or the database failed loading the event
        _refuse(exc, event_id, user_id, request_id)
    if decision.status in (seat_gate.REGISTERED, seat_gate.WAITLISTED_ALREADY):
        if placed := _placed_by(user_id, retry):
            raise idempotency.KeyTaken(placed)
        _refuse(AlreadyRegistered(), event_id, user_id, request_id, decision.status)
    if decision.status == seat_gate.FULL and not decision.dead_holders(gate.client):
        _refuse(EventFull(), event_id, user_id, request_id, "gate")
    # PENDING: another attempt of this person holds a place, and it may have died;
    # UNSURE: full only counting an old hold; FULL counting a hold of a dead process.
    # SQL, not the hold, tells the truth.
    return decision.status in (seat_gate.HELD, seat_gate.WAIT_HELD)


def _refuse(exc: Exception, event_id: int, user_id: int, request_id: str | None,
            detail: str = "sql") -> NoReturn:
    """Record an attempt that placed nobody, and raise what the caller sees."""
    if isinstance(exc, NotFound):
        raise exc
    if unavailable(exc) or isinstance(exc, Busy):
        log.warning("registration not made: the database was busy", extra={
            "event_id": event_id, "user_id": user_id, "request_id": request_id,
            "error": str(exc).splitlines()[0]})
        record_attempt(event_id=event_id, user_id=user_id, action=Action.REGISTER,
                       outcome=Logged.FAILED, request_id=request_id, detail="busy")
        raise (exc if isinstance(exc, Busy) else Busy(REGISTER_BUSY)) from exc
    outcome = _REFUSED.get(type(exc))
    if outcome is None:
        log.exception("registration failed; rolled back", exc_info=exc, extra={
            "event_id": event_id, "user_id": user_id, "request_id": request_id})
        record_attempt(event_id=event_id, user_id=user_id, action=Action.REGISTER,
                       outcome=Logged.FAILED, request_id=request_id,
                       detail=type(exc).__name__)
        raise RegistrationFailed() from exc
    record_attempt(event_id=event_id, user_id=user_id, action=Action.REGISTER,
                   outcome=outcome, request_id=request_id,
                   detail="closed" if isinstance(exc, RegistrationClosed) else detail)
    raise exc


_MINE = select(REGISTRATIONS.c.id, REGISTRATIONS.c.status, REGISTRATIONS.c.position,
               REGISTRATIONS.c.registered_at).where(
    REGISTRATIONS.c.event_id == bindparam("event_id"),
    REGISTRATIONS.c.user_id == bindparam("user_id"))
# How long to keep asking a database that went away whether a commit landed (~4 s).
_ASK_AGAIN = (0.0, 0.25, 0.5, 1.0, 2.0)


def _find_out(gate, held: bool, event_id: int, user_id: int, token: str,
              request_id: str | None, exc: CommitUnknown) -> Outcome:
    """The link broke while the place was committing. The row is unique per person and
    event: read it (asking again while the database comes back) before answering.

    :raise RegistrationFailed: it was not saved (then, and only then, the hold goes).
    :raise OutcomeUnknown: the database did not answer; the hold stays until it expires.
    """
    log.warning("commit outcome unknown; asking the database", extra={
        "event_id": event_id, "user_id": user_id, "request_id": request_id})
    for pause in _ASK_AGAIN:
        time.sleep(pause)
        try:
            with read_session() as session:
                mine = session.execute(_MINE, {"event_id": event_id,
                                               "user_id": user_id}).one_or_none()
        except Exception as error:
            if not unavailable(error):
                raise
            continue
        if mine is None or mine.status not in LIVE:
            _release(gate, held, event_id, user_id, token)
            _refuse(exc, event_id, user_id, request_id)
        status = Status(mine.status)
        _confirm(gate, held, event_id, user_id, token, status)
        return Outcome(status, event_id, user_id, mine.id, mine.position,
                       registered_at=mine.registered_at)
    record_attempt(event_id=event_id, user_id=user_id, action=Action.REGISTER,
                   outcome=Logged.FAILED, request_id=request_id, detail="unknown")
    raise OutcomeUnknown() from exc


# Does the event exist, has it started, has this person a row here? One round trip, no lock.
_KNOWN = (
    select(seats.EVENTS.c.starts_at,
           select(REGISTRATIONS.c.id)
           .where(REGISTRATIONS.c.event_id == bindparam("event_id"),
                  REGISTRATIONS.c.user_id == bindparam("user_id"))
           .scalar_subquery())
    .where(seats.EVENTS.c.id == bindparam("event_id"))
)


def _place(event_id: int, user_id: int, request_id: str | None,
           retry: idempotency.Retry | None) -> tuple[Status, int, int | None, datetime]:
    """Commit the person's place: (status, registration id, waitlist position, when).

    :raise CommitUnknown: the link broke while the place was committing.
    :raise idempotency.KeyTaken: `retry`'s key was used before; nothing was written.
    """
    now = utcnow()
    if db.engine.dialect.name == "postgresql":
        with autocommit_connection() as connection:
            try:
                seated = seats.seat_newcomer(connection, event_id, user_id, request_id,
                                             now=now, retry=retry)
            except IntegrityError as exc:
                lifecycle.raise_if_duplicate(exc)
                idempotency.raise_if_taken(exc)
                raise
        if seated is not None:
            registration_id, outbox_id = seated
            enqueue([outbox_id])  # committed already; if Redis fails, the sweeper does it
            return Status.CONFIRMED, registration_id, None, now
    with write_session() as session:
        known = session.connection().execute(
            _KNOWN, {"event_id": event_id, "user_id": user_id}).one_or_none()
        if known is None:
            raise NotFound("That event does not exist.")
        if known.starts_at <= now:
            raise RegistrationClosed()
        mine = None
        if known[1] is not None:  # a row here already: the event row first, then theirs
            seats.lock_event(session, event_id)
            mine = lifecycle.current(session, event_id, user_id)
            if mine.status in LIVE:
                raise AlreadyRegistered()
        status, position = seats.take_place(session, event_id)  # the guarded UPDATE
        registration_id = lifecycle.move(session, event_id=event_id, user_id=user_id,
                                         to=status, was=mine, position=position,
                                         request_id=request_id, now=now)
        if retry is not None:
            idempotency.remember(session, retry, event_id=event_id, user_id=user_id,
                                 outcome=status, registration_id=registration_id,
                                 position=position, registered_at=now, now=now)
    return status, registration_id, position, now


def _release(gate, held: bool, event_id: int, user_id: int, token: str) -> None:
    """Compensation: give back the hold of a failed attempt (idempotent by token)."""
    if not held:
        return
    try:
        gate.release(event_id, user_id, token)
    except seat_gate.GateUnavailable:
        log.warning("hold not released; it expires by itself",
                    extra={"event_id": event_id, "user_id": user_id})
