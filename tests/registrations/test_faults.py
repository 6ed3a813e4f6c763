"""Failures while registering: no partial record, no leaked seat, Redis rebuilt from SQL (P5)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest

from tests.support.app import other_app
from tests.support.processes import free_port
from tests.support.races import race, tally
from tests.support.seat_keys import forget, held_count
from tests.support.state import redis_seats, sql_confirmed_users
from webapp.errors import Busy, EventFull, RegistrationFailed
from webapp.registrations import services
from webapp.registrations.gate import EventKeys, get_gate
from webapp.registrations.models import Status
from webapp.registrations.reconcile import reconcile_upcoming


@pytest.fixture
def corrupt_activity(app, backend):
    """corrupt_activity(user_ids) -> stop(): the database refuses their 'confirmed'
    activity rows (a CHECK constraint on PostgreSQL, a trigger on SQLite), so their
    transaction fails at that INSERT, however the service writes it."""
    from webapp.extensions import db

    def run(sql: str) -> None:
        with app.app_context(), db.engine.begin() as conn:
            conn.exec_driver_sql(sql)

    drops = []

    def corrupt(user_ids):
        doomed = ", ".join(str(int(u)) for u in user_ids)
        if backend == "postgresql":
            run("ALTER TABLE activity_log ADD CONSTRAINT test_doomed CHECK "
                f"(outcome <> 'confirmed' OR user_id NOT IN ({doomed})) NOT VALID")
            drop = "ALTER TABLE activity_log DROP CONSTRAINT IF EXISTS test_doomed"
        else:
            run("CREATE TRIGGER test_doomed BEFORE INSERT ON activity_log "
                f"WHEN NEW.outcome = 'confirmed' AND NEW.user_id IN ({doomed}) "
                "BEGIN SELECT RAISE(ABORT, 'activity row refused by a constraint'); END")
            drop = "DROP TRIGGER IF EXISTS test_doomed"
        drops.append(drop)
        return lambda: run(drop)

    yield corrupt
    for drop in drops:
        run(drop)


# --- the commit fails ----------------------------------------------------------

def assert_nothing_taken(event_id: int, counts, redis_client) -> None:
    c = counts(event_id)
    assert (c["confirmed_count"], c["confirmed"], c["waitlisted"], c["cancelled"]) == (0, 0, 0, 0)
    assert c["activity"] == {"failed": 1}
    k = EventKeys.for_event(event_id)
    assert redis_client.zcard(k.holds) == 0
    assert redis_client.hlen(k.tokens) == 0
    assert redis_client.scard(k.confirmed) == 0


def test_a_failing_commit_leaves_no_row_and_no_held_seat(
        app_ctx, make_event, make_user, counts, redis_client, at_registration_commit):
    event = make_event(capacity=1)
    unlucky, next_person = make_user(), make_user()

    def boom():
        raise RuntimeError("disk full at commit")

    stop = at_registration_commit("before", boom)
    with pytest.raises(RegistrationFailed):
        services.register(event.id, unlucky.id, request_id="req-commit-fails")

    assert_nothing_taken(event.id, counts, redis_client)
    stop()
    # The only seat was not leaked: the next person gets it at once.
    assert services.register(event.id, next_person.id).status == Status.CONFIRMED
    assert counts(event.id)["confirmed_count"] == 1


def test_a_failing_activity_insert_rolls_back_the_seat(
        app_ctx, make_event, make_user, counts, redis_client, corrupt_activity):
    """A real database error: the activity row breaks a CHECK constraint."""
    event = make_event(capacity=1)
    unlucky, next_person = make_user(), make_user()

    corrupt_activity({unlucky.id})
    with pytest.raises(RegistrationFailed) as caught:
        services.register(event.id, unlucky.id)

    assert "constraint" in str(caught.value.__cause__).lower()
    assert_nothing_taken(event.id, counts, redis_client)
    assert services.register(event.id, next_person.id).status == Status.CONFIRMED
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (1, 1)
    assert redis_seats(redis_client, event.id) == ({next_person.id}, 0)


def test_failed_commits_in_a_race_leak_no_seat(
        app, app_ctx, make_event, make_user, counts, redis_client, corrupt_activity):
    """Most commits fail while 30 race for 4 seats; no seat stays taken by a failed attempt."""
    event = make_event(capacity=4)
    people = [make_user() for _ in range(30)]
    doomed = {p.id for p in people} - {p.id for p in people[::7]}  # 25 of 30 fail

    stop = corrupt_activity(doomed)
    results = race(app, [lambda p=p: services.register(event.id, p.id) for p in people])
    stop()

    t = tally(results)
    assert set(t) <= {Status.CONFIRMED, "RegistrationFailed", "EventFull"}, t
    assert t["RegistrationFailed"] >= 1, "no attempt failed: the fault was not injected"
    seated = sql_confirmed_users(event.id)
    assert len(seated) == t[Status.CONFIRMED] <= 4
    assert not doomed & seated
    c = counts(event.id)
    assert c["confirmed_count"] == c["confirmed"] == t[Status.CONFIRMED]
    assert c["activity"] == {k: v for k, v in {
        "confirmed": t[Status.CONFIRMED], "failed": t["RegistrationFailed"],
        "rejected_full": t["EventFull"]}.items() if v}
    assert redis_seats(redis_client, event.id) == (seated, 0)

    # Seats the failed attempts held were given back: newcomers fill exactly what is left.
    newcomers = [make_user() for _ in range(10)]
    again = race(app, [lambda p=p: services.register(event.id, p.id) for p in newcomers])
    seated = t[Status.CONFIRMED]
    assert tally(again) == Counter({Status.CONFIRMED: 4 - seated, "EventFull": 6 + seated})
    assert counts(event.id)["confirmed_count"] == 4


# --- Redis loses everything ----------------------------------------------------

def test_redis_flushed_between_registrations_is_rebuilt_from_sql(
        app, app_ctx, make_event, make_user, counts, redis_client):
    event = make_event(capacity=10)
    people = [make_user() for _ in range(36)]
    first = race(app, [lambda p=p: services.register(event.id, p.id) for p in people[:6]])
    assert tally(first) == {Status.CONFIRMED: 6}

    redis_client.flushdb()  # a restart without persistence
    assert redis_client.exists(EventKeys.for_event(event.id).seats) == 0
    rest = race(app, [lambda p=p: services.register(event.id, p.id) for p in people[6:]])

    assert tally(rest) == {Status.CONFIRMED: 4, "EventFull": 26}
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (10, 10)
    assert c["activity"] == {"confirmed": 10, "rejected_full": 26}
    assert redis_seats(redis_client, event.id) == (sql_confirmed_users(event.id), 0)
    assert redis_client.hget(EventKeys.for_event(event.id).seats, "capacity") == "10"


def test_redis_flushed_again_and_again_during_a_race_never_oversells(
        app, app_ctx, make_event, make_user, counts, redis_client):
    event = make_event(capacity=10)
    people = [make_user() for _ in range(40)]
    stop = threading.Event()

    def flusher():
        flushes = 0
        while not stop.is_set() and flushes < 20:
            redis_client.flushdb()
            flushes += 1
            time.sleep(0.005)
        return flushes

    calls = [lambda p=p: services.register(event.id, p.id) for p in people]
    calls.append(flusher)
    try:
        results = race(app, calls)
    finally:
        stop.set()

    assert results[-1] >= 1
    assert tally(results[:-1]) == {Status.CONFIRMED: 10, "EventFull": 30}
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (10, 10)
    assert c["activity"] == {"confirmed": 10, "rejected_full": 30}
    # Redis never counts a seat SQL has free (an attempt in flight across a flush may
    # go uncounted until reconcile: the safe direction), and the next person is refused.
    late = make_user()
    with pytest.raises(EventFull):
        services.register(event.id, late.id)
    seated, holds = redis_seats(redis_client, event.id)
    assert seated <= sql_confirmed_users(event.id)
    assert holds == 0
    reconcile_upcoming()
    assert redis_seats(redis_client, event.id) == (sql_confirmed_users(event.id), 0)


def test_redis_flushed_between_commit_and_confirm_counts_the_seat_after_rebuild(
        app_ctx, make_event, make_user, counts, redis_client, at_registration_commit):
    event = make_event(capacity=2)
    first, second, third = make_user(), make_user(), make_user()

    stop = at_registration_commit("after", redis_client.flushdb)
    assert services.register(event.id, first.id).status == Status.CONFIRMED
    stop()

    assert services.register(event.id, second.id).status == Status.CONFIRMED
    with pytest.raises(EventFull):
        services.register(event.id, third.id)
    assert redis_seats(redis_client, event.id) == ({first.id, second.id}, 0)
    assert counts(event.id)["confirmed_count"] == 2


# --- a process dies between reserve and commit ---------------------------------

def test_a_stale_hold_blocks_the_seat_until_its_ttl_then_the_seat_returns(
        app, make_event, make_user, counts, database_url, redis_url, redis_client):
    event = make_event(capacity=1)
    crashed, waiting = make_user(), make_user()

    with other_app(app, database_url, redis_url, SEAT_HOLD_TTL_MS=500) as short, \
            short.app_context():
        gate = get_gate()
        assert gate.hold_ttl_ms == 500
        assert gate.reserve(event.id, crashed.id, uuid.uuid4().hex).status == "held"
        # ... and the process dies here: no commit, no release.
        held_at = time.monotonic()

        with pytest.raises(EventFull):
            services.register(event.id, waiting.id)
        assert time.monotonic() - held_at < 0.5, "too slow to observe the hold"
        time.sleep(max(0.0, held_at + 0.55 - time.monotonic()))
        outcome = services.register(event.id, waiting.id)

    assert outcome.status == Status.CONFIRMED
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (1, 1)
    assert c["activity"] == {"rejected_full": 1, "confirmed": 1}
    k = EventKeys.for_event(event.id)
    assert redis_client.zrange(k.holds, 0, -1) == []
    assert redis_client.hgetall(k.tokens) == {}


# --- reconcile -----------------------------------------------------------------

def test_reconcile_repairs_counters_set_wrong_on_purpose(
        app, app_ctx, make_event, make_user, redis_client):
    drifting = make_event(capacity=5)
    healthy = make_event(capacity=4)
    over = make_event(capacity=3, starts_in=-timedelta(hours=3))  # ended an hour ago
    a, b, c = make_user(), make_user(), make_user()
    for person in (a, b, c):
        services.register(drifting.id, person.id)
    services.register(healthy.id, a.id)
    held = uuid.uuid4().hex
    get_gate().reserve(drifting.id, 990003, held)  # an attempt in flight
    k = EventKeys.for_event(drifting.id)
    redis_client.sadd(k.confirmed, 990001, 990002)  # people SQL never seated
    redis_client.srem(k.confirmed, a.id)  # a seat SQL has
    redis_client.hset(k.seats, "capacity", 2)

    report = {d.event_id: d for d in reconcile_upcoming()}

    assert set(report) == {drifting.id, healthy.id}  # the event that ended is skipped
    d = report[drifting.id]
    assert (d.existed, d.redis_capacity, d.redis_confirmed, d.sql_capacity, d.sql_confirmed,
            d.missing, d.extra, d.drifted) == (True, 2, 4, 5, 3, 1, 2, True)
    assert report[healthy.id].drifted is False
    assert redis_client.hget(k.seats, "capacity") == "5"
    assert {int(u) for u in redis_client.smembers(k.confirmed)} == {a.id, b.id, c.id}
    assert redis_client.hgetall(k.tokens) == {"990003": held}  # live holds are left alone
    assert redis_client.exists(EventKeys.for_event(over.id).seats) == 0
    assert [d.drifted for d in reconcile_upcoming()] == [False, False]


def test_the_reconcile_command_reports_drift(app, app_ctx, make_event, make_user,
                                             redis_client):
    drifting, healthy, lost = (make_event(capacity=n) for n in (5, 4, 3))
    a, b = make_user(), make_user()
    for event in (drifting, healthy, lost):
        services.register(event.id, a.id)
    services.register(drifting.id, b.id)
    k = EventKeys.for_event(drifting.id)
    redis_client.srem(k.confirmed, b.id)
    redis_client.sadd(k.confirmed, 990001)
    redis_client.hset(k.seats, "capacity", 9)
    forget(get_gate(), lost.id)

    result = app.test_cli_runner().invoke(args=["seats", "reconcile"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines == [
        f"event {drifting.id}: sql capacity 5 confirmed 2 -> REPAIRED: redis capacity 9 "
        f"confirmed 2 (missing 1, extra 1)",
        f"event {healthy.id}: sql capacity 4 confirmed 1 -> ok",
        f"event {lost.id}: sql capacity 3 confirmed 1 -> rebuilt (was missing)",
        "3 upcoming event(s) checked: 1 repaired, 1 rebuilt (were missing).",
    ]
    assert {int(u) for u in redis_client.smembers(k.confirmed)} == {a.id, b.id}
    again = app.test_cli_runner().invoke(args=["seats", "reconcile"])
    assert again.output.splitlines()[-1] == (
        "3 upcoming event(s) checked: 0 repaired, 0 rebuilt (were missing).")


# --- Redis unreachable -----------------------------------------------------------

def test_redis_unreachable_the_sql_guard_alone_still_never_oversells(
        app, make_event, make_user, counts, database_url):
    event = make_event(capacity=3)
    people = [make_user() for _ in range(20)]
    closed = f"redis://127.0.0.1:{free_port()}/0"

    with other_app(app, database_url, closed) as down:
        results = race(down, [lambda p=p: services.register(event.id, p.id, request_id="down")
                              for p in people])
        with down.app_context():
            winner = next(r.user_id for r in results if isinstance(r, services.Outcome))
            loser = next(p for p, r in zip(people, results, strict=True)
                         if isinstance(r, EventFull))
            assert services.cancel(event.id, winner).status == "cancelled"
            assert services.register(event.id, winner).status == Status.CONFIRMED
            with pytest.raises(EventFull):
                services.register(event.id, loser.id)

    assert tally(results) == {Status.CONFIRMED: 3, "EventFull": 17}
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"], c["cancelled"]) == (3, 3, 0)
    assert c["activity"] == {"confirmed": 4, "rejected_full": 18, "cancelled": 1}


def test_a_cancel_while_redis_was_down_is_repaired_by_reconcile(
        app, app_ctx, make_event, make_user, counts, database_url, redis_client):
    event = make_event(capacity=1)
    leaving, waiting = make_user(), make_user()
    services.register(event.id, leaving.id)

    with other_app(app, database_url, f"redis://127.0.0.1:{free_port()}/0") as down, \
            down.app_context():
        services.cancel(event.id, leaving.id)  # SQL frees the seat; Redis never hears of it

    assert counts(event.id)["confirmed_count"] == 0
    with pytest.raises(EventFull):  # the gate is stale and too strict, never too loose
        services.register(event.id, waiting.id)
    drift = {d.event_id: d for d in reconcile_upcoming()}[event.id]
    assert (drift.missing, drift.extra) == (0, 1)
    assert services.register(event.id, waiting.id).status == Status.CONFIRMED
    assert redis_seats(redis_client, event.id) == ({waiting.id}, 0)


def test_a_cancel_landing_between_commit_and_confirm_leaves_redis_agreeing_with_sql(
        app_ctx, make_event, make_user, counts, redis_client, at_registration_commit):
    """The person's second tab cancels right after the first tab's commit, before its confirm."""
    event = make_event(capacity=1)
    person, other = make_user(), make_user()

    fired = []

    def cancel_at_once():
        if not fired:
            fired.append(True)
            services.cancel(event.id, person.id)  # commits and vacates before our confirm

    at_registration_commit("after", cancel_at_once)
    assert services.register(event.id, person.id).status == Status.CONFIRMED
    assert fired == [True]

    assert counts(event.id)["confirmed_count"] == 0
    assert sql_confirmed_users(event.id) == set()
    assert redis_seats(redis_client, event.id) == (set(), 0)
    assert services.register(event.id, other.id).status == Status.CONFIRMED


def test_a_lost_connection_while_the_gate_loads_the_event_is_busy_and_saves_nothing(
        app_ctx, make_event, make_user, counts, redis_client, listen):
    from sqlalchemy.exc import OperationalError

    from webapp.extensions import db

    event, person = make_event(capacity=2), make_user()

    def fail_capacity_read(_conn, _cursor, statement, _params, _context, _many):
        if statement.lstrip().upper().startswith("SELECT EVENTS.CAPACITY"):
            raise OperationalError(statement, {}, Exception("server closed the connection"))

    listen(db.engine, "before_cursor_execute", fail_capacity_read)
    with pytest.raises(Busy) as caught:
        services.register(event.id, person.id)
    assert "Nothing was saved" in caught.value.message  # known: nothing was written

    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"]) == (0, 0)
    assert c["activity"] == {"failed": 1}
    assert redis_seats(redis_client, event.id) == (set(), 0)


def test_reconcile_goes_on_past_an_event_that_keeps_changing(
        app_ctx, make_event, make_user, redis_client, monkeypatch):
    from webapp.registrations import gate as seat_gate

    hot, quiet = make_event(capacity=5), make_event(capacity=5)
    person = make_user()
    services.register(quiet.id, person.id)
    services.register(hot.id, person.id)
    redis_client.sadd(EventKeys.for_event(quiet.id).confirmed, 990001)  # drift to repair
    gate = get_gate()
    real_snapshot = seat_gate._sql_snapshot

    def hot_event_always_commits_meanwhile(event_id):
        seen = real_snapshot(event_id)
        if event_id == hot.id:
            redis_client.incr(EventKeys.for_event(hot.id).version)  # a confirm lands
        return seen

    monkeypatch.setattr(seat_gate, "_sql_snapshot", hot_event_always_commits_meanwhile)
    with pytest.raises(seat_gate.GateUnavailable, match=str(hot.id)):
        reconcile_upcoming()

    # The busy event was skipped this round, but the quiet one was still repaired.
    assert {int(u) for u in redis_client.smembers(EventKeys.for_event(quiet.id).confirmed)} == {
        person.id}
    assert held_count(gate, quiet.id) == 0
