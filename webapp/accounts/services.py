"""A person's own account: change the password, export everything kept, delete the account.

The pages (/account) and the API (/api/users/me/...) call these same functions.
Every change is recorded in the security audit trail (webapp/auth/audit.py).
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from werkzeug.security import check_password_hash

from webapp.accounts.schemas import DataExport
from webapp.auth import audit, directory
from webapp.auth import services as auth_services
from webapp.auth.audit import NOWHERE, Origin
from webapp.auth.models import SecurityKind, User
from webapp.auth.passwords import check_password
from webapp.database import write_session
from webapp.errors import Busy, Conflict, Invalid, NotFound, NotRegistered, Unauthorized
from webapp.events.models import Event
from webapp.extensions import db
from webapp.mail.models import OutboxMessage
from webapp.mail.services import withdraw_mail_to
from webapp.registrations import idempotency
from webapp.registrations import services as registrations
from webapp.registrations.models import LIVE, Registration, RetryRecord
from webapp.reports.models import ActivityEntry
from webapp.sqltypes import utcnow

log = logging.getLogger("turnout.accounts")

# How often a deletion takes apart what a request of the person, authenticated just
# before the deletion signed them out, registered in the meantime.
DELETE_ROUNDS = 3


class WrongPassword(Unauthorized):
    code, message = "invalid_credentials", "That is not your current password."


class OwnsEvents(Conflict):
    code = "owns_events"
    message = ("You organize events that have not ended yet. Hand them over or delete "
               "your events first.")


class SamePassword(Invalid):
    code = "invalid_password"
    message = "Password: choose a new password, not your current one."


class _StillRegistered(Exception):
    """A place was taken after the deletion cancelled the person's places: go round again."""


# --- reading the person ------------------------------------------------------------

def _person(user_id: int) -> User:
    """The live account (a fresh SQL read: the signed-in copy has no password hash).

    :raise NotFound: no such account, or deleted.
    """
    db.session.rollback()  # a fresh snapshot: the request may have read the row already
    user = db.session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("This account does not exist.")
    return user


def _check_current(user: User, current_password: str) -> None:
    """:raise WrongPassword: `current_password` is not the account's password."""
    if not check_password_hash(user.password_hash, current_password or ""):
        raise WrongPassword()


# --- change password ----------------------------------------------------------------

def change_password(user_id: int, current_password: str, new_password: str, *,
                    origin: Origin = NOWHERE) -> User | None:
    """Set a new password, and sign out every session and revoke every API token.

    The caller's own session ends too; a page keeps its browser signed in by
    logging in again with the returned person (at their new session_version).

    :return: the person as they are now (a detached copy at the new version), None if
      they were signed out again in the meantime.
    :raise WrongPassword: `current_password` is wrong.
    :raise Invalid: the new password is the wrong length, too easy to guess (the
      message says why; code invalid_password) or the current one again.
    :raise Unauthorized: the person was signed out everywhere (or changed the password
      elsewhere) while this was checked; nothing changed.
    """
    user = _person(user_id)
    _check_current(user, current_password)
    check_password(new_password, email=user.email, name=user.name)
    if check_password_hash(user.password_hash, new_password):
        raise SamePassword()
    checked_at = user.session_version
    with write_session() as session:
        # Only at the version the current password was checked at: a sign-out or another
        # change in between wins, and this one changes nothing.
        version = auth_services.set_password(user_id, new_password, only_at_version=checked_at,
                                             session=session)
        if version is None:
            raise Unauthorized("You were signed out while changing your password. "
                               "Sign in again and try once more.")
        audit.record(SecurityKind.PASSWORD_CHANGED, user_id=user_id, origin=origin,
                     session=session)
    log.info("password changed", extra={"user_id": user_id})
    # None only if the person signed out again in the split second since.
    return directory.user_at_version(user_id, version)


# --- export my data -----------------------------------------------------------------

def export_data(user_id: int, *, origin: Origin = NOWHERE) -> dict[str, Any]:
    """Everything kept about the person, as JSON-ready data (webapp.accounts.schemas.DataExport).

    Recorded as DATA_EXPORTED first, so the export lists itself.

    :raise NotFound: no such account, or deleted.
    """
    _person(user_id)
    audit.record(SecurityKind.DATA_EXPORTED, user_id=user_id, origin=origin)
    user = _person(user_id)
    session = db.session
    document = {
        "exported_at": utcnow(),
        "account": user,
        "registrations": list(session.scalars(
            select(Registration).where(Registration.user_id == user_id)
            .options(selectinload(Registration.event)).order_by(Registration.id))),
        "activity": list(session.scalars(
            select(ActivityEntry).where(ActivityEntry.user_id == user_id)
            .order_by(ActivityEntry.id))),
        "emails": list(session.scalars(
            select(OutboxMessage).where(OutboxMessage.user_id == user_id)
            .order_by(OutboxMessage.id))),
        "security_events": audit.events_of(user_id),
        "organized_events": list(session.scalars(
            select(Event).where(Event.organizer_id == user_id).order_by(Event.id))),
        "idempotency_keys": list(session.scalars(
            select(RetryRecord).where(RetryRecord.user_id == user_id)
            .order_by(RetryRecord.created_at, RetryRecord.key))),
    }
    return DataExport.model_validate(document).model_dump(mode="json")


# --- delete my account ----------------------------------------------------------------

def delete_account(user_id: int, *, current_password: str | None = None,
                   origin: Origin = NOWHERE) -> None:
    """Delete the account: cancel the person's places, then leave an anonymous tombstone.

    In this order, so that nothing is left half done:

    1. refuse (nothing changed) for a wrong `current_password` (the pages ask for it;
       the API's bearer token is proof enough) or events the person still organizes;
    2. sign out every session and token, so the person can take no new place;
    3. cancel every live place at an event that has not ended, each through the
       registration service exactly as the person's own cancel (the next on the
       waitlist is promoted and told). A failure here leaves the account as it was,
       signed out and minus the places already cancelled: deleting again finishes it;
    4. one transaction: the row anonymized (auth.services.anonymize), the person's
       Idempotency-Keys deleted, unsent email to them withdrawn, their address taken
       out of their security events, ACCOUNT_DELETED recorded. If a place appeared
       since step 3 (a request of theirs authenticated before step 2), it rolls back
       and goes round again.

    Places at events that have ended stay as they were (the attendance happened) and,
    like the activity log, point at the anonymous row from then on. A second deletion
    of the same account changes nothing.

    :raise NotFound: no such account, or deleted already.
    :raise WrongPassword: `current_password` was given and is wrong.
    :raise OwnsEvents: the person organizes an event that has not ended.
    :raise Busy: places kept appearing (or the database was too busy); trying again is safe.
    """
    user = _person(user_id)
    if current_password is not None:
        _check_current(user, current_password)
    _refuse_if_organizing(db.session, user_id)
    auth_services.sign_out_everywhere(user_id)
    for _round in range(DELETE_ROUNDS):
        _cancel_places(user_id, origin.request_id)
        try:
            with write_session() as session:
                if auth_services.anonymize(user_id, session=session) is None:
                    return  # deleted by a concurrent request of the same person
                _refuse_if_organizing(session, user_id)
                if _live_places(session, user_id):
                    raise _StillRegistered()
                idempotency.forget(session, user_id)
                withdrawn = withdraw_mail_to(session, user_id)
                audit.forget_address(user_id, session=session)
                audit.record(SecurityKind.ACCOUNT_DELETED, user_id=user_id, origin=origin,
                             session=session)
        except _StillRegistered:
            continue
        log.info("account deleted", extra={"user_id": user_id, "emails_withdrawn": withdrawn,
                                           "request_id": origin.request_id})
        return
    raise Busy("Your account could not be deleted just now. Please try again.")


def _refuse_if_organizing(session: Session, user_id: int) -> None:
    """:raise OwnsEvents: the person organizes an event that has not ended."""
    owned = session.scalar(select(Event.id).where(Event.organizer_id == user_id,
                                                  Event.ends_at > utcnow()).limit(1))
    if owned is not None:
        raise OwnsEvents()


def _live_places(session: Session, user_id: int) -> list[int]:
    """The events, not ended yet, at which the person holds a seat or a waitlist place."""
    return list(session.scalars(
        select(Registration.event_id)
        .join(Event, Event.id == Registration.event_id)
        .where(Registration.user_id == user_id, Registration.status.in_(LIVE),
               Event.ends_at > utcnow())
        .order_by(Registration.event_id)))


def _cancel_places(user_id: int, request_id: str | None) -> None:
    """Cancel each live place through the registration service (promotion, email, gate)."""
    db.session.rollback()  # a fresh snapshot
    for event_id in _live_places(db.session, user_id):
        # NotRegistered: cancelled meanwhile (by the event's organizer, say): as good.
        with suppress(NotRegistered):
            registrations.cancel(event_id, user_id, request_id=request_id)
