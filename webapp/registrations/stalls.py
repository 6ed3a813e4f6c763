"""Events whose row someone holds too long: answered "busy" at once, not with a thread.

Every writer of an event waits for its row lock, for at most the database's
lock timeout (DB_LOCK_TIMEOUT_MS). When one transaction holds an event's row
(a stuck organizer edit, a held lock in psql), every attempt on that event
would still wait that long, each with a thread of ours, and a rush on it
would take every thread from every other event: once, registrations for all
events stopped for 67 s. So, per process: after a lock wait on an event timed
out, attempts on it are answered 503 busy at once for STALL_SECONDS, and then
one attempt at a time (a probe) waits for the lock again until one gets it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app

from webapp.database import lock_timed_out
from webapp.errors import Busy

STUCK = ("Someone else is changing this event right now. Nothing was saved; "
         "please try again in a few seconds.")


class Stalls:
    """The paused events of one app in one process."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._until: dict[int, float] = {}  # event id -> monotonic time the pause ends
        self._probing: set[int] = set()

    def admit(self, event_id: int) -> bool:
        """True when this attempt is the probe of a paused event; raise Busy while paused."""
        with self._lock:
            until = self._until.get(event_id)
            if until is None:
                return False
            if time.monotonic() < until or event_id in self._probing:
                raise Busy(STUCK)
            self._probing.add(event_id)
            return True

    def pause(self, event_id: int) -> None:
        with self._lock:
            self._until[event_id] = time.monotonic() + self.seconds
            self._probing.discard(event_id)

    def end_probe(self, event_id: int, *, cleared: bool) -> None:
        with self._lock:
            self._probing.discard(event_id)
            if cleared:
                self._until.pop(event_id, None)

    def paused(self, event_id: int) -> bool:
        with self._lock:
            return event_id in self._until


def stalls() -> Stalls:
    """This app's paused events."""
    app = current_app
    found = app.extensions.get("turnout_stalls")
    if found is None:
        found = app.extensions["turnout_stalls"] = Stalls(app.config["STALL_SECONDS"])
    return found


@contextmanager
def watch(event_id: int) -> Iterator[None]:
    """Run a write of the event, unless its row is known to be held.

    :raise Busy: the event's row is held (retry_after says when to try again).
    """
    paused = stalls()
    probe = paused.admit(event_id)
    try:
        yield
    except Exception as exc:
        if lock_timed_out(exc):
            paused.pause(event_id)
        elif probe:
            paused.end_probe(event_id, cleared=False)
        raise
    if probe:
        paused.end_probe(event_id, cleared=True)
