"""The outbox's life cycle: write with the change, enqueue after commit, claim, mark, sweep.

Delivery is at-least-once with a claim that makes it once in practice:
a job sends only after it claimed the row (pending -> sending), a second run
of the same job finds it sent and does nothing, and a claim whose sender died
expires after MAIL_SEND_LEASE_SECONDS so the sweeper can hand the row on.
The one window left: the SMTP server accepted the message and the worker died
before it marked the row sent; that message is sent again, with the same
Message-ID, so the receiving side can tell.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from rq import Queue, Retry
from rq.serializers import JSONSerializer
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session

from webapp.database import on_commit, read_session, write_session
from webapp.extensions import redis_store
from webapp.mail.models import MailKind, MailStatus, OutboxMessage
from webapp.sqltypes import utcnow

log = logging.getLogger("turnout.mail")

QUEUE_NAME = "emails"
JOB = "webapp.mail.jobs.deliver"
_PENDING_KEY = "turnout_outbox_rows"


# --- writing (inside the caller's transaction) -------------------------------

def mail_row(kind: MailKind, *, event_id: int, user_id: int, registration_id: int,
             position: int | None = None, now: datetime | None = None) -> dict:
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


# --- enqueueing ---------------------------------------------------------------

def email_queue() -> Queue:
    return Queue(QUEUE_NAME, connection=redis_store.rq_client, serializer=JSONSerializer)


def retry_intervals() -> list[int]:
    return list(current_app.config["MAIL_RETRY_INTERVALS"])


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


def claim(outbox_id: int) -> Claim | None:
    """pending -> sending, or take over a claim whose lease ran out. None: nothing to do."""
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
    return None if attempt is None else Claim(outbox_id, attempt)


def load(outbox_id: int) -> OutboxMessage | None:
    """The row with its event, organizer and person, detached, for rendering."""
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
    with write_session() as session:
        # Only while our claim stands: a taken-over claim belongs to the new sender.
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == claimed.id, OutboxMessage.status == MailStatus.SENDING,
                   OutboxMessage.attempts == claimed.attempt)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


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
