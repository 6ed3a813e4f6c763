"""The registration service under real concurrency: never oversell, never double-book (P1, P3)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.support.app import other_app
from tests.support.control import control_run
from tests.support.races import race, tally
from tests.support.state import activity_total, redis_seats, sql_confirmed_users
from webapp.errors import AlreadyRegistered, EventFull, NotFound, NotRegistered, RegistrationClosed
from webapp.registrations import services
from webapp.registrations.gate import EventKeys, get_gate
from webapp.registrations.models import Registration, Status

# --- the race ------------------------------------------------------------------

def test_forty_people_five_seats_exactly_five_confirmed(app, app_ctx, make_event, make_user,
                                                        counts, redis_client):
    event = make_event(capacity=5)
    people = [make_user() for _ in range(40)]

    results = race(app, [lambda p=p: services.register(event.id, p.id, request_id=f"r-{p.id}")
                         for p in people])

    assert tally(results) == {Status.CONFIRMED: 5, "EventFull": 35}
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"], c["cancelled"]) == (5, 5, 0)
    assert c["activity"] == {"confirmed": 5, "rejected_full": 35}
    winners = {r.user_id for r in results if isinstance(r, services.Outcome)}
    assert sql_confirmed_users(event.id) == winners
    assert redis_seats(redis_client, event.id) == (winners, 0)


def test_the_sql_guard_alone_never_oversells(app, make_event, make_user, counts,
                                             database_url, redis_url, redis_client):
    """With the Redis gate off, the guarded UPDATE is all that stands between 40 people."""
    event = make_event(capacity=5)
    people = [make_user() for _ in range(40)]

    with other_app(app, database_url, redis_url, SEAT_GATE_ENABLED=False) as no_gate:
        results = race(no_gate, [lambda p=p: services.register(event.id, p.id)
                                 for p in people])

    assert tally(results) == {Status.CONFIRMED: 5, "EventFull": 35}
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (5, 5)
    assert c["activity"] == {"confirmed": 5, "rejected_full": 35}
    assert redis_client.exists(EventKeys.for_event(event.id).seats) == 0


def test_the_sql_guard_catches_a_gate_that_lets_too_many_through(
        app, app_ctx, make_event, make_user, counts, redis_client):
    event = make_event(capacity=5)
    people = [make_user() for _ in range(40)]
    gate = get_gate()
    gate.rebuild(event.id, force=False)
    redis_client.hset(EventKeys.for_event(event.id).seats, "capacity", 1000)  # Redis lies

    results = race(app, [lambda p=p: services.register(event.id, p.id) for p in people])

    assert tally(results) == {Status.CONFIRMED: 5, "EventFull": 35}
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (5, 5)
    assert c["activity"] == {"confirmed": 5, "rejected_full": 35}
    # Every loser's hold was given back.
    assert redis_seats(redis_client, event.id)[1] == 0


def test_control_with_the_guards_off_the_same_race_oversells(
        app, make_event, make_user, counts):
    """Proves the race tests can see an oversell: the naive check-then-write does oversell."""
    event = make_event(capacity=5)
    people = [make_user() for _ in range(40)]

    with control_run(app, window_ms=50) as unsafe:
        results = race(unsafe, [lambda p=p: services.register(event.id, p.id)
                                for p in people])

    confirmed_rows = counts(event.id)["confirmed"]
    assert tally(results)[Status.CONFIRMED] == confirmed_rows
    assert confirmed_rows > 5, "the control run did not oversell: the race is not a race"


def test_one_person_twenty_tabs_gets_exactly_one_seat(app, app_ctx, make_event, make_user,
                                                      counts, redis_client):
    event = make_event(capacity=5)
    person = make_user()

    results = race(app, [lambda: services.register(event.id, person.id) for _ in range(20)])

    assert tally(results) == {Status.CONFIRMED: 1, "AlreadyRegistered": 19}
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (1, 1)
    assert c["activity"] == {"confirmed": 1, "rejected_duplicate": 19}
    assert redis_seats(redis_client, event.id) == ({person.id}, 0)


def test_one_person_twenty_tabs_without_the_gate_gets_exactly_one_seat(
        app, make_event, make_user, counts, database_url, redis_url):
    event = make_event(capacity=5)
    person = make_user()

    with other_app(app, database_url, redis_url, SEAT_GATE_ENABLED=False) as no_gate:
        results = race(no_gate, [lambda: services.register(event.id, person.id)
                                 for _ in range(20)])

    assert tally(results) == {Status.CONFIRMED: 1, "AlreadyRegistered": 19}
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (1, 1)
    assert c["activity"] == {"confirmed": 1, "rejected_duplicate": 19}


def test_many_writers_on_several_events_never_hit_database_is_locked(
        app, app_ctx, make_event, make_user, counts, redis_client):
    """30 people register and cancel on 3 events at once: only the expected refusals."""
    events = [make_event(capacity=3) for _ in range(3)]
    people = [make_user() for _ in range(30)]
    log: dict[int, Counter] = {e.id: Counter() for e in events}
    lock = threading.Lock()

    def churn(person):
        done = []
        for round_ in range(3):
            for event in events:
                try:
                    services.register(event.id, person.id)
                    done.append((event.id, "confirmed"))
                    if (person.id + round_) % 2 == 0:
                        services.cancel(event.id, person.id)
                        done.append((event.id, "cancelled"))
                except EventFull:
                    done.append((event.id, "rejected_full"))
                except AlreadyRegistered:
                    done.append((event.id, "rejected_duplicate"))
        with lock:
            for event_id, outcome in done:
                log[event_id][outcome] += 1
        return "ok"

    results = race(app, [lambda p=p: churn(p) for p in people])

    assert results == ["ok"] * 30, [r for r in results if r != "ok"]
    for event in events:
        c = counts(event.id)
        seated = sql_confirmed_users(event.id)
        assert c["confirmed_count"] == c["confirmed"] == len(seated) <= 3
        assert c["confirmed"] == log[event.id]["confirmed"] - log[event.id]["cancelled"]
        assert c["activity"] == {k: v for k, v in log[event.id].items() if v}
        assert redis_seats(redis_client, event.id) == (seated, 0)


# --- one person at a time ------------------------------------------------------

def test_registering_twice_is_already_registered(app_ctx, make_event, make_user, counts):
    event, person = make_event(capacity=3), make_user()
    first = services.register(event.id, person.id, request_id="req-first-1")

    with pytest.raises(AlreadyRegistered):
        services.register(event.id, person.id, request_id="req-second-2")

    assert first.status == Status.CONFIRMED
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (1, 1)
    assert c["activity"] == {"confirmed": 1, "rejected_duplicate": 1}


def test_cancel_frees_the_seat_for_someone_else(app_ctx, make_event, make_user, counts,
                                                redis_client):
    event = make_event(capacity=1)
    first, second = make_user(), make_user()
    services.register(event.id, first.id)
    with pytest.raises(EventFull):
        services.register(event.id, second.id)

    cancelled = services.cancel(event.id, first.id)
    outcome = services.register(event.id, second.id)

    assert (cancelled.status, outcome.status) == (Status.CANCELLED, Status.CONFIRMED)
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"], c["cancelled"]) == (1, 1, 1)
    assert c["activity"] == {"confirmed": 2, "rejected_full": 1, "cancelled": 1}
    assert redis_seats(redis_client, event.id) == ({second.id}, 0)
    with pytest.raises(NotRegistered):
        services.cancel(event.id, first.id)


def test_register_again_after_cancel_reuses_the_row(app_ctx, make_event, make_user, counts):
    from webapp.database import read_session

    event, person = make_event(capacity=2), make_user()
    first = services.register(event.id, person.id)
    services.cancel(event.id, person.id)

    again = services.register(event.id, person.id)

    assert again.registration_id == first.registration_id
    with read_session() as s:
        rows = s.scalars(select(Registration).where(Registration.event_id == event.id)).all()
    assert [(r.id, r.status, r.cancelled_at, r.position) for r in rows] == [
        (first.registration_id, Status.CONFIRMED, None, None)]
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"], c["cancelled"]) == (1, 1, 0)


def test_registering_for_a_started_event_is_closed(app_ctx, make_event, make_user, counts,
                                                   redis_client):
    event, person = make_event(capacity=5, starts_in=timedelta(minutes=-5)), make_user()

    with pytest.raises(RegistrationClosed):
        services.register(event.id, person.id)

    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"], c["cancelled"]) == (0, 0, 0)
    assert c["activity"] == {"rejected_full": 1}  # the log has no "closed" outcome
    assert redis_seats(redis_client, event.id) == (set(), 0)  # the gate's hold was given back


def test_an_unknown_event_is_not_found_and_nothing_is_written(app_ctx, make_user,
                                                               redis_client):
    from webapp.database import read_session

    person = make_user()

    with pytest.raises(NotFound):
        services.register(424242, person.id)
    with pytest.raises(NotFound):
        services.cancel(424242, person.id)

    with read_session() as s:
        assert s.scalar(select(func.count()).select_from(Registration)) == 0
    assert activity_total() == 0
    assert list(redis_client.scan_iter(match="turnout:{event:424242}:*")) == []


def test_ten_concurrent_cancels_free_exactly_one_seat(app, app_ctx, make_event, make_user,
                                                      counts, redis_client):
    event = make_event(capacity=2)
    person, stays = make_user(), make_user()
    services.register(event.id, person.id)
    services.register(event.id, stays.id)

    results = race(app, [lambda: services.cancel(event.id, person.id) for _ in range(10)])

    assert tally(results) == {Status.CANCELLED: 1, "NotRegistered": 9}
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"], c["cancelled"]) == (1, 1, 1)
    assert c["activity"] == {"confirmed": 2, "cancelled": 1}
    assert redis_seats(redis_client, event.id) == ({stays.id}, 0)
