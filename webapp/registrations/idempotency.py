"""Idempotent registration: a retry with the same Idempotency-Key gets the first answer.

Stripe's semantics (SPEC "Faults and retries"): the same key by the same
person for the same request answers what the first attempt answered and
changes nothing; the same key for another request is refused (422).

How it holds without a read on the happy path: the transaction that places
the person also inserts the key's row (primary key: person and key), so a
second effect of the same key breaks the key and rolls back; the attempt then
reads the row and answers from it. A refusal (full, already registered,
closed) is remembered after it is made. An attempt that failed (503, 500)
is not: trying again may work, and it wrote nothing. Rows live a day (purge()).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError

from webapp.database import read_session, write_session
from webapp.errors import (
    AlreadyRegistered,
    EventFull,
    IdempotencyKeyReused,
    Invalid,
    RegistrationClosed,
    ServiceError,
)
from webapp.registrations.models import RetryRecord, Status
from webapp.sqltypes import utcnow

KEYS = RetryRecord.__table__
MAX_KEY_LENGTH = 255
KEPT = timedelta(hours=24)

# Refusals a retry gets again, by code.
_REFUSALS: dict[str, type[ServiceError]] = {
    cls.code: cls for cls in (EventFull, AlreadyRegistered, RegistrationClosed)}


@dataclass(frozen=True)
class Retry:
    """An attempt's Idempotency-Key and what the request was (to tell a reuse)."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str | None, *parts: str | bytes) -> Retry | None:
        """The key with the sha256 of the request's parts (method, path, body); None
        without a key.

        :raise Invalid: the key is empty or longer than 255 characters.
        """
        if key is None:
            return None
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise Invalid(f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} characters.",
                          code="invalid_idempotency_key")
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part.encode() if isinstance(part, str) else part)
            digest.update(b"\0")
        return cls(key, digest.hexdigest())


@dataclass(frozen=True)
class Answer:
    """What the first attempt answered: a place, or the code of its refusal."""

    outcome: str
    event_id: int
    registration_id: int | None
    position: int | None
    registered_at: datetime | None


class KeyTaken(Exception):
    """The key's row exists already: an earlier attempt with this key answered first."""


def row(retry: Retry, *, event_id: int, user_id: int, outcome: str,
        registration_id: int | None = None, position: int | None = None,
        registered_at: datetime | None = None, now: datetime | None = None) -> dict:
    """The values of a key's row."""
    return {"user_id": user_id, "key": retry.key, "fingerprint": retry.fingerprint,
            "event_id": event_id, "outcome": outcome, "registration_id": registration_id,
            "position": position, "registered_at": registered_at,
            "created_at": now or utcnow()}


def remember(session, retry: Retry, **values) -> None:
    """Write the key's row in the caller's transaction (the one that placed the person).

    :raise KeyTaken: the key was used before (the transaction must roll back).
    """
    try:
        session.execute(insert(KEYS), row(retry, **values))
    except IntegrityError as exc:
        raise_if_taken(exc)
        raise


def remember_refusal(retry: Retry, *, event_id: int, user_id: int, code: str) -> None:
    """After a refusal: remember it, unless an attempt with this key got there first."""
    try:
        with write_session() as session:
            session.execute(insert(KEYS), row(retry, event_id=event_id, user_id=user_id,
                                              outcome=code))
    except IntegrityError as exc:
        raise_if_taken(exc)
        raise


def raise_if_taken(exc: IntegrityError) -> None:
    """An insert broke the key's primary key: the key was used before."""
    message = str(exc.orig)  # PostgreSQL names the key; SQLite names the columns
    if "pk_idempotency_keys" in message or "idempotency_keys.user_id" in message:
        raise KeyTaken() from exc


_FIND = select(KEYS).where(KEYS.c.user_id == bindparam("user_id"),
                           KEYS.c.key == bindparam("key"))


def earlier(user_id: int, retry: Retry) -> Answer | None:
    """The first answer given to this key, if any.

    :raise IdempotencyKeyReused: the key was used for a different request.
    """
    with read_session() as session:
        found = session.execute(_FIND, {"user_id": user_id, "key": retry.key}).one_or_none()
    if found is None:
        return None
    if found.fingerprint != retry.fingerprint:
        raise IdempotencyKeyReused()
    return Answer(found.outcome, found.event_id, found.registration_id, found.position,
                  found.registered_at)


def refusal(answer: Answer) -> ServiceError | None:
    """The error to raise again for a remembered refusal; None for a place."""
    if answer.outcome in (Status.CONFIRMED, Status.WAITLISTED):
        return None
    return _REFUSALS[answer.outcome]()


def purge(now: datetime | None = None) -> int:
    """Forget keys older than a day: how many."""
    with write_session() as session:
        return session.execute(
            delete(KEYS).where(KEYS.c.created_at < (now or utcnow()) - KEPT)).rowcount
