"""The outbox's life cycle: write with the change, enqueue after commit, claim, mark, sweep.

Delivery is at-least-once with a claim that makes it once in practice:
a job sends only after it claimed the row (pending -> sending), a second run
of the same job finds it sent and does nothing, and a claim whose sender died
expires after MAIL_SEND_LEASE_SECONDS so the sweeper can hand the row on.
The one window left: the SMTP server accepted the message and the worker died
(or the database stayed unreachable for longer than the job could wait) before
it marked the row sent; that message is sent again, with the same Message-ID,
so the receiving side can tell.

How late an email can be after an outage ends: delivery_bound_seconds().
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from rq import Queue, Retry
from rq.serializers import JSONSerializer
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from webapp.database import on_commit, read_session, write_session
from webapp.extensions import redis_store
from webapp.mail.models import ACCOUNT_MAIL, MailKind, MailStatus, OutboxMessage
from webapp.sqltypes import utcnow

log = logging.getLogger("turnout.mail")

QUEUE_NAME = "emails"
JOB = "webapp.mail.jobs.deliver"
_PENDING_KEY = "turnout_outbox_rows"


# --- writing (inside the caller's transaction) -------------------------------

def mail_row(kind: MailKind, *, event_id: int | None, user_id: int,
             registration_id: int | None, position: int | None = None,
             now: datetime | None = None) -> dict:
    """The values of a new outbox row: pending, no attempt yet, due after the grace time."""
    now = now or utcnow()
    return {"kind": kind, "event_id": event_id, "user_id": user_id,
            "registration_id": registration_id, "position": position,
            "status": MailStatus.PENDING, "attempts": 0, "created_at": now,
            "due_at": mail_due_at(now)}


def add_mail(session: Session, kind: MailKind, *, event_id: int, user_id: int,
             registration_id: int, position: int | None = None) -> int:
    """Write one email into the caller's transaction (its job is enqueued after the
    commit): the new row's id. The one writer of outbox rows (the one-statement seat of
    webapp/registrations/seats.py inserts mail_row() too)."""
    outbox_id = session.connection().execute(_INSERT_MAIL, mail_row(
        kind, event_id=event_id, user_id=user_id, registration_id=registration_id,
        position=position)).scalar_one()
    enqueue_after_commit(session, outbox_id)
    return outbox_id


def add_account_mail(session: Session, kind: MailKind, *, user_id: int) -> int:
    """Write one account email (a reset, a verification, "you already have an account")
    into the caller's transaction, like add_mail: no event, no registration. It is
    composed when sent, so its link is signed then and stored nowhere."""
    if kind not in ACCOUNT_MAIL:
        raise ValueError(f"{kind!r} is an event's email, not an account's")
    outbox_id = session.connection().execute(_INSERT_MAIL, mail_row(
        kind, event_id=None, user_id=user_id, registration_id=None)).scalar_one()
    enqueue_after_commit(session, outbox_id)
    return outbox_id


_INSERT_MAIL = insert(OutboxMessage.__table__).returning(OutboxMessage.__table__.c.id)


def mail_due_at(now: datetime | None = None) -> datetime:
    """When the sweeper may enqueue a new row again if its job got lost."""
    return (now or utcnow()) + timedelta(seconds=current_app.config["OUTBOX_GRACE_SECONDS"])


def enqueue_after_commit(session: Session, outbox_id: int) -> None:
    """One enqueue of every email of the transaction, after its commit."""
    ids = session.info.get(_PENDING_KEY)
    if ids is None:
        ids = session.info[_PENDING_KEY] = []
        on_commit(session, lambda: enqueue(ids))
    ids.append(outbox_id)


WITHDRAWN_ACCOUNT_DELETED = "not sent: the account was deleted"


def withdraw_mail_to(session: Session, user_id: int) -> int:
    """In the caller's transaction (an account deletion): every unsent email to this person
    is never sent. Marked failed with the reason, so neither a job nor the sweeper claims it
    again; a job already sending finds its claim gone when it records the outcome."""
    return session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.user_id == user_id,
               OutboxMessage.status.in_((MailStatus.PENDING, MailStatus.SENDING)))
        .values(status=MailStatus.FAILED, claimed_at=None,
                last_error=WITHDRAWN_ACCOUNT_DELETED)
        .execution_options(synchronize_session=False)
    ).rowcount


# --- enqueueing ---------------------------------------------------------------

def email_queue() -> Queue:
    return Queue(QUEUE_NAME, connection=redis_store.rq_client, serializer=JSONSerializer)


def retry_intervals() -> list[int]:
    return list(current_app.config["MAIL_RETRY_INTERVALS"])


def delivery_bound_seconds(config) -> int:
    """The longest a pending email waits for its next attempt once an outage has ended.

    Let E be the end of the outage (Redis, PostgreSQL or SMTP) and S the sweep
    interval. Every email still unsent at E is in one of three states:

    - pending, its job lost or never enqueued (Redis down at commit, Redis
      restarted empty, RQ gave up its retries while PostgreSQL was down): due
      again at most OUTBOX_GRACE_SECONDS after E (a sweep during a Redis
      outage pushed due_at by the grace before its enqueue failed), so a
      sweep enqueues it by E + grace + S;
    - pending after a temporary SMTP failure at f < E: its RQ retry runs at
      f + interval, and if that job was lost the sweep finds it at
      f + interval + grace (+ S); so by E + max(interval) + grace + S;
    - sending, claimed at c < E by a sender that died or could not record the
      outcome: the lease runs out at c + MAIL_SEND_LEASE_SECONDS, then a sweep
      hands it on: by E + lease + S.

    The RQ worker waits at most 30 s between two looks at Redis
    (workers/queue_worker.py), less than grace + S, and an upkeep loop that
    died is back within seconds (workers/__main__.py). Add the few seconds a
    job takes, and a backlog's drain time. With the defaults (intervals up to
    120 s, grace 60 s, lease 120 s, sweep 30 s) the bound is 210 s, inside the
    5 minutes of the SPEC.
    """
    intervals = list(config["MAIL_RETRY_INTERVALS"]) or [0]
    grace = config["OUTBOX_GRACE_SECONDS"]
    return max(max(intervals) + grace, config["MAIL_SEND_LEASE_SECONDS"]) + \
        config["OUTBOX_SWEEP_INTERVAL_SECONDS"]


def enqueue(ids: Iterable[int]) -> bool:
    """One job per row, in one round trip. False when Redis is unreachable (the sweeper retries)."""
    ids = list(ids)
    if not ids:
        return True
    config = current_app.config
    intervals = retry_intervals()
    queue = email_queue()
    jobs = [Queue.prepare_data(
        JOB, args=(outbox_id,), timeout=config["MAIL_JOB_TIMEOUT_SECONDS"],
        result_ttl=3600, failure_ttl=7 * 24 * 3600, description=f"email outbox#{outbox_id}",
        retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
    ) for outbox_id in ids]
    try:
        queue.enqueue_many(jobs)
    except Exception as exc:  # Redis down: the rows wait; the sweeper enqueues them later
        log.warning("email job not enqueued; the sweeper will retry",
                    extra={"outbox_ids": ids, "error": str(exc)})
        return False
    return True


def sweep(now: datetime | None = None, limit: int = 500) -> int:
    """Enqueue rows whose job was lost: pending past due_at, or a claim past its lease.

    Each row so handed on is not due again for OUTBOX_GRACE_SECONDS, so a slow
    queue is not flooded with copies (a copy would find the row claimed or sent).
    """
    now = now or utcnow()
    config = current_app.config
    stale = now - timedelta(seconds=config["MAIL_SEND_LEASE_SECONDS"])
    with write_session() as session:
        rows = list(session.scalars(
            select(OutboxMessage)
            .where(_claimable(stale), OutboxMessage.due_at <= now)
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ))
        if not rows:
            return 0
        due = now + timedelta(seconds=config["OUTBOX_GRACE_SECONDS"])
        for row in rows:
            row.due_at = due
        ids = [row.id for row in rows]
    if enqueue(ids):
        log.info("outbox swept", extra={"outbox_ids": ids})
        return len(ids)
    return 0


def _claimable(stale: datetime):
    """Pending, or claimed by a sender whose lease ran out (claimed before `stale`)."""
    return or_(OutboxMessage.status == MailStatus.PENDING,
               and_(OutboxMessage.status == MailStatus.SENDING,
                    OutboxMessage.claimed_at <= stale))


# --- the job's steps ------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    id: int
    attempt: int
    # Until when (time.monotonic()) recording the outcome may be tried again: within the job.
    record_until: float = 0.0


def claim(outbox_id: int, record_until: float | None = None) -> Claim | None:
    """pending -> sending, or take over a claim whose lease ran out. None: nothing to do.

    `record_until`: how long the outcome may wait for the database (default: half
    MAIL_JOB_TIMEOUT_SECONDS from now); the job passes what its own timeout leaves.
    """
    if record_until is None:
        record_until = time.monotonic() + current_app.config["MAIL_JOB_TIMEOUT_SECONDS"] / 2
    now = utcnow()
    stale = now - timedelta(seconds=current_app.config["MAIL_SEND_LEASE_SECONDS"])
    with write_session() as session:
        attempt = session.scalar(
            update(OutboxMessage)
            .where(OutboxMessage.id == outbox_id, _claimable(stale))
            .values(status=MailStatus.SENDING, claimed_at=now,
                    attempts=OutboxMessage.attempts + 1)
            .returning(OutboxMessage.attempts)
            .execution_options(synchronize_session=False)
        )
    return None if attempt is None else Claim(outbox_id, attempt, record_until)


def load(outbox_id: int) -> OutboxMessage | None:
    """The row with its event and organizer (none for an account's email) and person,
    detached, for rendering."""
    from sqlalchemy.orm import joinedload

    from webapp.events.models import Event

    with read_session() as session:
        return session.scalar(
            select(OutboxMessage)
            .where(OutboxMessage.id == outbox_id)
            .options(joinedload(OutboxMessage.user),
                     joinedload(OutboxMessage.event).joinedload(Event.organizer))
        )


def mark_sent(claimed: Claim) -> None:
    _finish(claimed, status=MailStatus.SENT, sent_at=utcnow(), last_error=None)


def mark_failed(claimed: Claim, error: str) -> None:
    _finish(claimed, status=MailStatus.FAILED, last_error=error[:500])


def mark_for_retry(claimed: Claim, error: str, delay_seconds: int) -> None:
    """Back to pending; the RQ retry runs it after the delay, the sweeper only after that."""
    due = utcnow() + timedelta(
        seconds=delay_seconds + current_app.config["OUTBOX_GRACE_SECONDS"])
    _finish(claimed, status=MailStatus.PENDING, due_at=due, claimed_at=None, last_error=error[:500])


def _finish(claimed: Claim, **values) -> None:
    """Record the outcome, trying again until claimed.record_until while the database does
    not answer: the SMTP server already has its answer, and a row left 'sending' would be
    sent again once its lease ran out."""
    delay = 0.25
    while True:
        try:
            with write_session() as session:
                # Only while our claim stands: a taken-over claim belongs to the new sender.
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == claimed.id,
                           OutboxMessage.status == MailStatus.SENDING,
                           OutboxMessage.attempts == claimed.attempt)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
            return
        except DBAPIError as exc:
            if time.monotonic() + delay > claimed.record_until:
                raise
            log.warning("outbox row not updated; trying again", extra={
                "outbox_id": claimed.id, "retry_in_s": delay, "error": str(exc).splitlines()[0]})
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


# --- reading ------------------------------------------------------------------

def failed_for_event(session: Session, event_id: int) -> list[OutboxMessage]:
    """Emails that could not be delivered, for the event's organizer to see."""
    from sqlalchemy.orm import joinedload

    return list(session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.event_id == event_id, OutboxMessage.status == MailStatus.FAILED)
        .options(joinedload(OutboxMessage.user))
        .order_by(OutboxMessage.id)
    ))
