"""Idempotent registration: a retry with the same Idempotency-Key gets the first answer.

Stripe's semantics (SPEC "Faults and retries"): the same key by the same
person for the same request answers what the first attempt answered and
changes nothing; the same key for another request is refused (422).

How it holds without a read on the happy path: the transaction that places
the person also inserts the key's row (primary key: person and key), so a
second effect of the same key breaks the key and rolls back; the attempt then
reads the row and answers from it. Rows live a day (purge()).

Answers are also kept in Redis for a day (a copy of the place, and the
refusals: full, already registered, closed), so that a refusal, the common
answer of a rush, stays one Redis round trip and no SQL. A refusal changed
nothing, so if Redis loses it the retry is simply judged again. An attempt
that failed (503, 500) is not remembered: trying again may work.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

import redis
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
from webapp.extensions import redis_store
from webapp.registrations.models import RetryRecord, Status
from webapp.sqltypes import utcnow

log = logging.getLogger("turnout.idempotency")

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
    registration_id: int | None = None
    position: int | None = None
    registered_at: datetime | None = None
    fingerprint: str = ""


class KeyTaken(Exception):
    """The key's row exists already: an earlier attempt with this key answered first
    (`answer`, when the raiser has read it already)."""

    def __init__(self, answer: Answer | None = None) -> None:
        super().__init__()
        self.answer = answer


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
    return _checked(Answer(found.outcome, found.event_id, found.registration_id,
                           found.position, found.registered_at, found.fingerprint), retry)


def _checked(answer: Answer, retry: Retry) -> Answer:
    if answer.fingerprint != retry.fingerprint:
        raise IdempotencyKeyReused()
    return answer


def first_answer(user_id: int, retry: Retry) -> Answer | None:
    """The key's first answer: Redis's copy, else SQL's row (copied back to Redis, so
    the next retry is cheap again).

    :raise IdempotencyKeyReused: the key was used for a different request.
    """
    answer = kept(user_id, retry)
    if answer is None:
        answer = earlier(user_id, retry)
        if answer is not None:
            keep(user_id, retry, answer)
    return answer


# --- the copies in Redis -----------------------------------------------------------------

def _redis_key(user_id: int, retry: Retry) -> str:
    return f"turnout:retry:{int(user_id)}:{hashlib.sha256(retry.key.encode()).hexdigest()}"


def _dumps(answer: Answer, retry: Retry) -> str:
    """The answer as kept for `retry`'s key: with the request's fingerprint."""
    data = asdict(replace(answer, fingerprint=retry.fingerprint))
    data["registered_at"] = answer.registered_at and answer.registered_at.isoformat()
    return json.dumps(data)


def _loaded(raw: str | bytes | None, retry: Retry) -> Answer | None:
    """A kept answer (None for none), checked against `retry`'s request."""
    if raw is None:
        return None
    data = json.loads(raw)
    if data["registered_at"]:
        data["registered_at"] = datetime.fromisoformat(data["registered_at"])
    return _checked(Answer(**data), retry)


def _kept_for_a_day(user_id: int, retry: Retry, answer: Answer, **options) -> str | None:
    """SET the key's copy in Redis (with `options`, e.g. nx and get)."""
    return redis_store.client.set(_redis_key(user_id, retry), _dumps(answer, retry),
                                  ex=int(KEPT.total_seconds()), **options)


def keep(user_id: int, retry: Retry, answer: Answer) -> None:
    """Copy a place's answer to Redis (after its commit); a failure only costs a read."""
    try:
        _kept_for_a_day(user_id, retry, answer)
    except redis.RedisError as exc:
        log.warning("answer not copied to Redis", extra={"error": str(exc)})


def kept(user_id: int, retry: Retry) -> Answer | None:
    """The answer kept in Redis for this key, if any.

    :raise IdempotencyKeyReused: the key was used for a different request.
    """
    try:
        return _loaded(redis_store.client.get(_redis_key(user_id, retry)), retry)
    except redis.RedisError:
        return None


def refuse_once(user_id: int, retry: Retry, refusal: Answer) -> Answer | None:
    """Keep this refusal as the key's answer, unless the key has one: that one (one round
    trip: SET NX GET), or None when this refusal is now the key's answer.

    :raise IdempotencyKeyReused: the key's answer is of a different request.
    """
    try:
        return _loaded(_kept_for_a_day(user_id, retry, refusal, nx=True, get=True), retry)
    except redis.RedisError:
        return None


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


def forget(session, user_id: int) -> int:
    """In the caller's transaction (an account deletion): drop every key of this person.
    Their Redis copies hold no more than the answer and expire within a day."""
    return session.execute(delete(KEYS).where(KEYS.c.user_id == user_id)).rowcount
