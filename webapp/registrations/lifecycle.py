"""A registration's lifecycle: every move of a person's place, and the rows it writes.

A move writes three rows in the caller's transaction, each through its one
writer: the registration row (write_registration, here), its activity entry
(webapp/reports/activity.py) and its email (webapp/mail/services.py add_mail).
What a move means (the activity's action and outcome, the email's kind) is the
TRANSITIONS table; a move it does not list is a bug, refused.

Seats are not counted here: webapp/registrations/seats.py takes and gives them
back, and calls move() for each person it moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.errors import AlreadyRegistered
from webapp.mail.models import MailKind
from webapp.mail.services import add_mail
from webapp.registrations.models import Registration, Status
from webapp.reports import activity
from webapp.reports.models import Action, Outcome
from webapp.sqltypes import utcnow

REGISTRATIONS = Registration.__table__


@dataclass(frozen=True)
class Transition:
    action: Action
    outcome: Outcome
    mail: MailKind
    mail_position: bool = False  # the email names the waitlist place (joined, or left)


_TO_SEAT = Transition(Action.REGISTER, Outcome.CONFIRMED, MailKind.CONFIRMATION)
_TO_WAITLIST = Transition(Action.REGISTER, Outcome.WAITLISTED, MailKind.WAITLISTED, True)

# (from, to) -> what the move is. None is "no row yet".
TRANSITIONS: dict[tuple[Status | None, Status], Transition] = {
    (None, Status.CONFIRMED): _TO_SEAT,
    (Status.CANCELLED, Status.CONFIRMED): _TO_SEAT,
    (None, Status.WAITLISTED): _TO_WAITLIST,
    (Status.CANCELLED, Status.WAITLISTED): _TO_WAITLIST,
    (Status.WAITLISTED, Status.CONFIRMED): Transition(
        Action.PROMOTE, Outcome.PROMOTED, MailKind.PROMOTED),
    (Status.CONFIRMED, Status.CANCELLED): Transition(
        Action.CANCEL, Outcome.CANCELLED, MailKind.CANCELLATION),
    (Status.WAITLISTED, Status.CANCELLED): Transition(
        Action.LEAVE_WAITLIST, Outcome.CANCELLED, MailKind.CANCELLATION, True),
}


@dataclass(frozen=True)
class Place:
    """A person's registration row as a move needs it."""

    id: int
    status: Status
    position: int | None


def current(session: Session, event_id: int, user_id: int) -> Place | None:
    """The person's row for the event, locked. Take the event row first (seats.lock_event
    or a guarded UPDATE): one lock order for every writer, so no deadlock."""
    row = session.execute(
        select(REGISTRATIONS.c.id, REGISTRATIONS.c.status, REGISTRATIONS.c.position)
        .where(REGISTRATIONS.c.event_id == event_id, REGISTRATIONS.c.user_id == user_id)
        .with_for_update()).one_or_none()
    return None if row is None else Place(row.id, Status(row.status), row.position)


def move(session: Session, *, event_id: int, user_id: int, to: Status,
         was: Place | None = None, position: int | None = None,
         request_id: str | None = None, action: Action | None = None,
         now: datetime | None = None) -> int:
    """Move the person's place (`was`, None for a first registration) to `to`, with its
    activity entry and email: the registration's id. `position` is the new waitlist place;
    leaving the waitlist, the email names the one left.

    :raise AlreadyRegistered: a concurrent first registration of the same person won.
    """
    step = TRANSITIONS[(was and was.status, to)]
    registration_id = write_registration(session, event_id=event_id, user_id=user_id,
                                         to=to, was=was, position=position, now=now)
    activity.record(session, event_id=event_id, user_id=user_id,
                    action=action or step.action, outcome=step.outcome, request_id=request_id)
    told = position if to == Status.WAITLISTED else was and was.position
    add_mail(session, step.mail, event_id=event_id, user_id=user_id,
             registration_id=registration_id, position=told if step.mail_position else None)
    return registration_id


def registration_row(*, event_id: int, user_id: int, to: Status, position: int | None = None,
                     now: datetime | None = None) -> dict:
    """The values of a new registration row."""
    now = now or utcnow()
    return {"event_id": event_id, "user_id": user_id, "status": to,
            "position": position if to == Status.WAITLISTED else None,
            "registered_at": now, "cancelled_at": now if to == Status.CANCELLED else None,
            "updated_at": now}


def write_registration(session: Session, *, event_id: int, user_id: int, to: Status,
                       was: Place | None, position: int | None,
                       now: datetime | None = None) -> int:
    """The one writer of registration rows: a new row, or the person's row moved.

    A position only while waitlisted, cancelled_at only when cancelled, and a
    registration time that is the latest (re)registration's: the CHECKs of the
    table hold by construction.
    """
    now = now or utcnow()
    if was is None:
        try:
            return session.connection().execute(_INSERT, registration_row(
                event_id=event_id, user_id=user_id, to=to, position=position,
                now=now)).scalar_one()
        except IntegrityError as exc:  # the rollback gives back whatever was taken
            raise_if_duplicate(exc)
            raise
    values = {"status": to, "position": position if to == Status.WAITLISTED else None,
              "cancelled_at": now if to == Status.CANCELLED else None, "updated_at": now}
    if was.status == Status.CANCELLED:  # coming back
        values["registered_at"] = now
    session.execute(update(REGISTRATIONS).where(REGISTRATIONS.c.id == was.id).values(values))
    return was.id


_INSERT = insert(REGISTRATIONS).returning(REGISTRATIONS.c.id)


def raise_if_duplicate(exc: IntegrityError) -> None:
    """A concurrent attempt of the same person won the unique (event, person) index."""
    message = str(exc.orig)  # PostgreSQL names the index; SQLite names the columns
    if ("uq_registrations_event_user" in message
            or "registrations.event_id, registrations.user_id" in message):
        raise AlreadyRegistered() from exc
