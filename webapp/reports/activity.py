"""The one writer of activity rows: every entry, in a change's transaction or alone.

An entry that records a change (confirmed, waitlisted, promoted, cancelled)
is written in the transaction that makes the change. An attempt that changed
nothing (a rejection, a failure) is written later in batches by the journal
(webapp/reports/journal.py), or alone when the journal is off.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from webapp.database import write_session
from webapp.reports.models import Action, ActivityEntry, Outcome
from webapp.sqltypes import utcnow

log = logging.getLogger("turnout.activity")

_TABLE = ActivityEntry.__table__
# A journal id is unique: an entry written again (after a lost acknowledgement) is skipped.
_INSERT = {
    name: dialect.insert(_TABLE).on_conflict_do_nothing(index_elements=[_TABLE.c.journal_id])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def entry(*, event_id: int, user_id: int, action: Action, outcome: Outcome,
          request_id: str | None, detail: str | None = None,
          occurred_at: datetime | None = None, journal_id: str | None = None) -> dict:
    """The values of one activity row."""
    return {"event_id": event_id, "user_id": user_id, "action": action, "outcome": outcome,
            "request_id": request_id or None, "detail": (detail or None) and detail[:500],
            "occurred_at": occurred_at or utcnow(), "journal_id": journal_id}


def write(session: Session, rows: list[dict]) -> None:
    """Insert entry() rows in the caller's transaction, in one statement."""
    session.execute(_INSERT[session.get_bind().dialect.name], rows)


def record(session: Session, **fields) -> None:
    """One entry in the caller's transaction, so it commits with the change it records."""
    write(session, [entry(**fields)])


def record_alone(**fields) -> bool:
    """One entry of an attempt that changed nothing, in its own transaction.

    Best effort: when the database itself is what failed, the JSON log line is
    the only record, and this returns False.
    """
    try:
        with write_session() as session:
            record(session, **fields)
        return True
    except Exception:
        log.exception("activity entry not written", extra={
            k: fields.get(k) for k in ("event_id", "user_id", "outcome", "request_id")})
        return False
