"""Writing and reading the activity log."""

from __future__ import annotations

import logging

from sqlalchemy import insert
from sqlalchemy.orm import Session

from webapp.database import write_session
from webapp.reports.models import ActivityEntry

log = logging.getLogger("turnout.activity")


def record(
    session: Session, *, event_id: int, user_id: int, action: str, outcome: str,
    request_id: str | None, detail: str | None = None,
) -> ActivityEntry:
    """Add one entry to the caller's transaction, so it commits with the change it records."""
    entry = ActivityEntry(**_values(event_id, user_id, action, outcome, request_id, detail))
    session.add(entry)
    return entry


def insert_entry(
    session: Session, *, event_id: int, user_id: int, action: str, outcome: str,
    request_id: str | None, detail: str | None = None,
) -> int:
    """record() as one INSERT, for the registration hot path: the new entry's id."""
    return session.connection().execute(
        _INSERT_ENTRY, _values(event_id, user_id, action, outcome, request_id, detail)
    ).scalar_one()


_INSERT_ENTRY = insert(ActivityEntry.__table__).returning(ActivityEntry.__table__.c.id)


def _values(event_id, user_id, action, outcome, request_id, detail) -> dict:
    return {"event_id": event_id, "user_id": user_id, "action": action, "outcome": outcome,
            "request_id": request_id, "detail": (detail or None) and detail[:500]}


def record_alone(
    *, event_id: int, user_id: int, action: str, outcome: str,
    request_id: str | None, detail: str | None = None,
) -> bool:
    """Record an attempt that changed nothing (a rejection or a failure) in its own transaction.

    Best effort: when the database itself is what failed, the JSON log line is
    the only record, and this returns False.
    """
    try:
        with write_session() as session:
            # A plain INSERT: a rejection in a rush is the commonest write, and the
            # unit of work's flush machinery cost more than the row itself.
            session.execute(insert(ActivityEntry.__table__).values(
                _values(event_id, user_id, action, outcome, request_id, detail)))
        return True
    except Exception:
        log.exception("activity entry not written",
                      extra={"event_id": event_id, "user_id": user_id, "outcome": outcome,
                             "request_id": request_id})
        return False
