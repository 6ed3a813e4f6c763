"""Reconciliation: Redis is rebuilt from SQL, the source of truth, and drift is reported."""

from __future__ import annotations

import logging

from sqlalchemy import select

from webapp.database import read_session
from webapp.events.models import Event
from webapp.registrations.gate import Drift, GateBusy, get_gate
from webapp.registrations.services import fill_from_waitlist
from webapp.sqltypes import utcnow

log = logging.getLogger("turnout.reconcile")


def reconcile_upcoming() -> list[Drift]:
    """Compare and repair every event that has not ended; returns what was found.

    :raise GateBusy: after every other event was repaired, naming the events that kept
        changing while they were read (a rush); the next round tries them again.
    :raise GateUnavailable: Redis did not answer.
    """
    gate = get_gate()
    if gate is None:
        return []
    with read_session() as s:
        event_ids = list(s.scalars(select(Event.id).where(Event.ends_at > utcnow())
                                   .order_by(Event.id)))
        stranded = list(s.scalars(select(Event.id).where(
            Event.starts_at > utcnow(), Event.confirmed_count < Event.capacity,
            Event.waitlisted_count > 0)))
    for event_id in stranded:
        # A free seat while people wait (a hold that failed after someone joined
        # the waitlist): the head of the queue gets it, as a cancellation would.
        promoted = fill_from_waitlist(event_id)
        log.info("free seats given to the waitlist",
                 extra={"event_id": event_id, "promoted": promoted})
    report, busy = [], []
    for event_id in event_ids:
        try:
            drift = gate.rebuild(event_id, force=True)
        except GateBusy:
            # One event in a rush must not keep every later event unrepaired.
            busy.append(event_id)
            continue
        if drift is not None:
            report.append(drift)
    repaired = sum(1 for d in report if d.drifted and d.existed)
    log.info("reconciled seats", extra={"events": len(report), "repaired": repaired,
                                        "busy": busy})
    if busy:
        error = GateBusy(f"events kept changing and were not reconciled: {busy}")
        error.report = report  # what was repaired before giving up on the busy ones
        raise error
    return report
