"""The control run: a naive check-then-write registration that must oversell under a race.

A race test that passes could be blind (the racers never overlapped). Run the
same race with `services.register` swapped for `naive_register` and it must
see more confirmed people than seats; that proves it would catch an oversell.
Production has no switch for this: the swap happens here, in the test process
(`control_run`), or in the live server's own app (control_wsgi.py).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

WINDOW_MS = 50  # between the check and the write: wide enough for every racer to look first
WINDOW_ENV = "TURNOUT_CONTROL_WINDOW_MS"  # control_wsgi.py reads it


def naive_register(event_id: int, user_id: int, *, request_id: str | None = None,
                   retry=None, window_ms: int = WINDOW_MS):
    """Read the seat count, wait, then write a confirmed row and seen + 1: no gate, no
    guarded UPDATE. Only the unique (event, user) index still stands (`retry`, the
    Idempotency-Key, is ignored).

    :raise NotFound: no such event.
    :raise EventFull: the count read was at capacity.
    :raise AlreadyRegistered: the unique index refused a second row for the person.
    """
    from webapp.errors import AlreadyRegistered, EventFull, NotFound
    from webapp.events.models import Event
    from webapp.extensions import db
    from webapp.registrations.models import Registration, Status
    from webapp.registrations.services import Outcome
    from webapp.sqltypes import utcnow

    with db.engine.connect() as conn:
        row = conn.execute(select(Event.confirmed_count, Event.capacity)
                           .where(Event.id == event_id)).one_or_none()
    if row is None:
        raise NotFound("That event does not exist.")
    seen, capacity = row
    if seen >= capacity:
        raise EventFull()
    time.sleep(window_ms / 1000)
    try:
        now = utcnow()
        with Session(bind=db.engine) as s, s.begin():
            registration = Registration(event_id=event_id, user_id=user_id,
                                        status=Status.CONFIRMED, registered_at=now)
            s.add(registration)
            s.flush()
            registration_id = registration.id
            s.execute(update(Event).where(Event.id == event_id)
                      .values(confirmed_count=seen + 1)
                      .execution_options(synchronize_session=False))
    except IntegrityError as exc:
        raise AlreadyRegistered() from exc
    return Outcome(status=Status.CONFIRMED, event_id=event_id, user_id=user_id,
                   registration_id=registration_id, registered_at=now)


def swap_in(app, window_ms: int = WINDOW_MS) -> Callable[[], None]:
    """Make `services.register` the naive one and turn `app`'s seat gate off; returns undo().

    The page view and the API call `services.register` through the module, so
    both take the naive path.
    """
    from webapp.registrations import services

    original, gate = services.register, app.config["SEAT_GATE_ENABLED"]
    services.register = functools.partial(naive_register, window_ms=window_ms)
    app.config["SEAT_GATE_ENABLED"] = False

    def undo() -> None:
        services.register = original
        app.config["SEAT_GATE_ENABLED"] = gate

    return undo


@contextmanager
def control_run(app, window_ms: int = WINDOW_MS) -> Iterator:
    """Within: registrations in this process are naive and `app`'s seat gate is off."""
    undo = swap_in(app, window_ms)
    try:
        yield app
    finally:
        undo()
