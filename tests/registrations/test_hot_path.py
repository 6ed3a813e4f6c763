"""The newcomer's seat in few statements: what it writes, what it sends the general way.

On PostgreSQL a newcomer taking a free seat is ONE statement (_SEAT_NEWCOMER);
every other case must fall through to the general path and come out exactly as
before. On SQLite the same rows come from plain INSERTs and the guarded UPDATE.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import Engine, text

from tests.support.races import race, tally
from tests.support.seat_keys import held_count
from webapp.database import read_session
from webapp.errors import (
    AlreadyRegistered,
    EventFull,
    NotFound,
    RegistrationClosed,
    RegistrationFailed,
)
from webapp.extensions import redis_store
from webapp.registrations import services
from webapp.registrations.gate import get_gate
from webapp.registrations.models import Status


@pytest.fixture
def statements(listen):
    """The SQL statements this thread sends, in order (BEGIN/COMMIT excluded)."""
    sent: list[str] = []

    def note(_conn, _cursor, statement, *_args):
        sent.append(" ".join(statement.split()).upper())

    listen(Engine, "before_cursor_execute", note)
    return sent


def writes(sent: list[str]) -> list[str]:
    return [s for s in sent if s.startswith(("INSERT", "UPDATE", "WITH", "DELETE"))]


def rows_of(event_id: int, user_id: int) -> dict:
    with read_session() as s:
        one = {"e": event_id, "u": user_id}
        return {
            "registration": s.execute(text(
                "SELECT status, position, registered_at IS NOT NULL, updated_at IS NOT NULL "
                "FROM registrations WHERE event_id = :e AND user_id = :u"), one).all(),
            "activity": s.execute(text(
                "SELECT action, outcome FROM activity_log WHERE event_id = :e AND user_id = :u"),
                one).all(),
            "outbox": s.execute(text(
                "SELECT o.kind, o.status, o.attempts, o.position, o.registration_id = r.id, "
                "o.due_at > o.created_at FROM outbox o JOIN registrations r "
                "ON r.event_id = o.event_id AND r.user_id = o.user_id "
                "WHERE o.event_id = :e AND o.user_id = :u"), one).all(),
        }


def queued() -> list[int]:
    queue = Queue("emails", connection=redis_store.rq_client, serializer=JSONSerializer)
    return [job.args[0] for job in queue.get_jobs()]


def test_a_newcomer_seat_is_one_statement_on_postgresql(
        app_ctx, backend, make_event, make_user, statements):
    event, person = make_event(capacity=3), make_user()
    statements.clear()
    outcome = services.register(event.id, person.id, request_id="req-hot")
    assert outcome.status == Status.CONFIRMED and outcome.registration_id
    sent = writes(statements)
    if backend == "postgresql":
        assert len(sent) == 1 and sent[0].startswith("WITH SEAT AS (UPDATE EVENTS"), sent
    else:
        # The event row first (one lock order for every writer), then the three rows.
        assert [s.split(" (")[0].split(" WHERE")[0] for s in sent] == [
            "UPDATE EVENTS SET CONFIRMED_COUNT=(EVENTS.CONFIRMED_COUNT + ?), UPDATED_AT=?",
            "INSERT INTO REGISTRATIONS", "INSERT INTO ACTIVITY_LOG", "INSERT INTO OUTBOX"], sent


def test_the_hot_path_writes_every_row_the_general_path_writes(
        app_ctx, make_event, make_user, counts):
    event, person = make_event(capacity=3), make_user()
    outcome = services.register(event.id, person.id, request_id="req-rows")
    assert rows_of(event.id, person.id) == {
        "registration": [(Status.CONFIRMED, None, True, True)],
        "activity": [("register", "confirmed")],
        "outbox": [("confirmation", "pending", 0, None, True, True)],
    }
    with read_session() as s:
        request_id, outbox_id = s.execute(text(
            "SELECT a.request_id, o.id FROM activity_log a JOIN outbox o "
            "ON o.event_id = a.event_id AND o.user_id = a.user_id "
            "WHERE a.event_id = :e"), {"e": event.id}).one()
    assert request_id == "req-rows"
    assert queued() == [outbox_id]  # its email job, enqueued after the commit
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (1, 1)
    assert outcome.registration_id is not None


def test_every_other_case_falls_through_to_the_general_path(
        app_ctx, make_event, make_user, counts):
    # A full event with a waitlist: a waitlist place, not a seat.
    event = make_event(capacity=1, waitlist_enabled=True)
    first, second = make_user(), make_user()
    assert services.register(event.id, first.id).status == Status.CONFIRMED
    placed = services.register(event.id, second.id)
    assert (placed.status, placed.position) == (Status.WAITLISTED, 1)
    assert rows_of(event.id, second.id)["outbox"] == [
        ("waitlisted", "pending", 0, 1, True, True)]
    # Someone waits: a newcomer may not pass the queue even when a seat is free.
    services.cancel(event.id, first.id)  # promotes `second`
    third, fourth = make_user(), make_user()
    assert services.register(event.id, third.id).status == Status.WAITLISTED
    assert services.register(event.id, fourth.id).position == 2
    # Full without a waitlist; already registered; coming back after a cancellation.
    small = make_event(capacity=1)
    assert services.register(small.id, first.id).status == Status.CONFIRMED
    with pytest.raises(EventFull):
        services.register(small.id, second.id)
    with pytest.raises(AlreadyRegistered):
        services.register(small.id, first.id)
    services.cancel(small.id, first.id)
    assert services.register(small.id, first.id).status == Status.CONFIRMED
    assert counts(small.id)["confirmed_count"] == 1
    # Started events and events that do not exist.
    started = make_event(starts_in=timedelta(minutes=-5))
    with pytest.raises(RegistrationClosed):
        services.register(started.id, third.id)
    with pytest.raises(NotFound):
        services.register(10**9, third.id)


def test_a_person_who_does_not_exist_is_a_failure_not_already_registered(
        app_ctx, make_event, counts):
    """A foreign-key violation is not the unique (event, person) index: no false
    'already registered', nothing written, the held seat given back."""
    event = make_event(capacity=1)
    with pytest.raises(RegistrationFailed):
        services.register(event.id, 10**9)
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (0, 0)
    assert c["activity"] == {}  # no row can name a person who does not exist (FK)
    assert held_count(get_gate(), event.id) == 0


def test_one_person_clicking_from_many_threads_gets_one_seat(
        app, app_ctx, make_event, make_user, counts):
    """Racers of the same person all pass NOT EXISTS at once: the unique index keeps one."""
    event, person = make_event(capacity=5), make_user()
    app.config["SEAT_GATE_ENABLED"] = False  # the SQL guard alone, where the race is real
    app.extensions.pop("turnout_gate", None)
    try:
        results = race(app, [lambda: services.register(event.id, person.id)] * 12)
    finally:
        app.config["SEAT_GATE_ENABLED"] = True
    t = tally(results)
    assert t[Status.CONFIRMED] == 1 and t[Status.CONFIRMED] + t["AlreadyRegistered"] == 12, t
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (1, 1)
    assert c["activity"] == {"confirmed": 1, "rejected_duplicate": 11}


def test_a_registered_person_on_a_full_event_is_already_registered_not_full(
        app, app_ctx, make_event, make_user):
    """With the SQL guard alone (Redis off or down), a second click of a seated person on a
    now full event is 'already registered': their row is read before a seat is sought."""
    event, person, other = make_event(capacity=1), make_user(), make_user()
    app.config["SEAT_GATE_ENABLED"] = False
    try:
        assert services.register(event.id, person.id).status == Status.CONFIRMED
        with pytest.raises(EventFull):
            services.register(event.id, other.id)
        with pytest.raises(AlreadyRegistered):
            services.register(event.id, person.id)
    finally:
        app.config["SEAT_GATE_ENABLED"] = True
