"""The waitlist: FIFO, atomic promotion, one place per person, no partial promotion (P2-P5)."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from tests.support.races import race, tally
from tests.support.state import settle_activity
from webapp.errors import AlreadyRegistered, EventFull, Invalid, NotRegistered, Unavailable
from webapp.registrations import queries, services
from webapp.registrations.gate import EventKeys
from webapp.registrations.models import Registration, Status
from webapp.registrations.reconcile import reconcile_upcoming

# --- helpers -------------------------------------------------------------------


def sql_people(event_id: int) -> tuple[set[int], list[tuple[int, int]]]:
    """(confirmed user ids, [(position, user id)] of the waitlist in position order)."""
    from webapp.database import read_session

    with read_session() as s:
        rows = s.execute(select(Registration.user_id, Registration.status, Registration.position)
                         .where(Registration.event_id == event_id)).all()
    confirmed = {u for u, status, _ in rows if status == Status.CONFIRMED}
    waiting = sorted((p, u) for u, status, p in rows if status == Status.WAITLISTED)
    return confirmed, waiting


def sql_event(event_id: int) -> dict:
    from webapp.database import read_session

    with read_session() as s:
        row = s.execute(text(
            "SELECT capacity, confirmed_count, waitlisted_count FROM events WHERE id = :e"),
            {"e": event_id}).one()
    return {"capacity": row[0], "confirmed_count": row[1], "waitlisted_count": row[2]}


def redis_people(client, event_id: int) -> tuple[set[int], set[int], int]:
    """(confirmed, waitlisted, live holds of either kind) as Redis counts them."""
    k = EventKeys.for_event(event_id)
    return ({int(u) for u in client.smembers(k.confirmed)},
            {int(u) for u in client.smembers(k.waitlisted)},
            client.zcard(k.holds) + client.zcard(k.wholds))


def redis_snapshot(client, event_id: int) -> dict:
    """Every key of the event, by type, exactly."""
    snap = {}
    for key in EventKeys.for_event(event_id).all:
        kind = client.type(key)
        if kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "string":
            value = client.get(key)
        else:
            value = None
        snap[key] = (kind, value)
    return snap


def activity(event_id: int) -> list[tuple[int, str, str]]:
    """(user id, action, outcome) in the order they happened."""
    from webapp.database import read_session

    settle_activity()
    with read_session() as s:
        return [tuple(r) for r in s.execute(text(
            "SELECT user_id, action, outcome FROM activity_log WHERE event_id = :e"
            " ORDER BY occurred_at, id"),
            {"e": event_id})]


def assert_consistent(event_id: int, redis_client) -> tuple[set[int], list[int]]:
    """The invariants that hold at rest; returns (confirmed, waitlist in order)."""
    confirmed, waiting = sql_people(event_id)
    e = sql_event(event_id)
    assert len(confirmed) <= e["capacity"]
    assert e["confirmed_count"] == len(confirmed)
    assert e["waitlisted_count"] == len(waiting)
    assert [p for p, _ in waiting] == list(range(1, len(waiting) + 1))
    order = [u for _, u in waiting]
    assert not confirmed & set(order)
    assert len(set(order)) == len(order)
    assert not (waiting and len(confirmed) < e["capacity"]), "someone waits beside a free seat"
    assert redis_people(redis_client, event_id) == (confirmed, set(order), 0)
    return confirmed, order


# --- 1. the rush ---------------------------------------------------------------

def test_thirty_people_three_seats_waitlist_of_ten(app, app_ctx, make_event, make_user,
                                                   counts, redis_client):
    event = make_event(capacity=3, waitlist_enabled=True, waitlist_capacity=10)
    people = [make_user() for _ in range(30)]

    results = race(app, [lambda p=p: services.register(event.id, p.id) for p in people])

    assert tally(results) == {Status.CONFIRMED: 3, Status.WAITLISTED: 10, "EventFull": 17}
    outcomes = [r for r in results if isinstance(r, services.Outcome)]
    positions = sorted(r.position for r in outcomes if r.status == Status.WAITLISTED)
    assert positions == list(range(1, 11))
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"], c["waitlisted"]) == (3, 3, 10)
    assert sql_event(event.id)["waitlisted_count"] == 10
    assert c["activity"] == {"confirmed": 3, "waitlisted": 10, "rejected_full": 17}
    confirmed, order = assert_consistent(event.id, redis_client)
    assert confirmed == {r.user_id for r in outcomes if r.status == Status.CONFIRMED}
    by_position = {r.position: r.user_id for r in outcomes if r.status == Status.WAITLISTED}
    assert order == [by_position[i] for i in range(1, 11)]


# --- 2. promotion --------------------------------------------------------------

def test_a_cancellation_promotes_the_head_of_the_queue(app_ctx, make_event, make_user,
                                                       redis_client):
    event = make_event(capacity=2, waitlist_enabled=True, waitlist_capacity=10)
    x, y, a, b, c = (make_user() for _ in range(5))
    for person in (x, y):
        assert services.register(event.id, person.id).status == Status.CONFIRMED
    joined = [services.register(event.id, p.id) for p in (a, b, c)]
    assert [(o.status, o.position) for o in joined] == [
        (Status.WAITLISTED, 1), (Status.WAITLISTED, 2), (Status.WAITLISTED, 3)]

    out = services.cancel(event.id, x.id)

    assert (out.status, out.previous, out.promoted) == (Status.CANCELLED, Status.CONFIRMED, (a.id,))
    assert assert_consistent(event.id, redis_client) == ({y.id, a.id}, [b.id, c.id])
    assert sql_people(event.id)[1] == [(1, b.id), (2, c.id)]
    assert activity(event.id)[-2:] == [(x.id, "cancel", "cancelled"),
                                       (a.id, "promote", "promoted")]
    assert queries.registration_status(event.id, a.id) == Status.CONFIRMED


def test_leaving_the_middle_of_the_queue_closes_the_gap(app_ctx, make_event, make_user,
                                                        redis_client):
    event = make_event(capacity=1, waitlist_enabled=True, waitlist_capacity=10)
    seated, a, b, c, d = (make_user() for _ in range(5))
    for person in (seated, a, b, c, d):
        services.register(event.id, person.id)

    out = services.cancel(event.id, b.id)

    assert (out.status, out.previous, out.promoted) == (Status.CANCELLED, Status.WAITLISTED, ())
    assert sql_people(event.id) == ({seated.id}, [(1, a.id), (2, c.id), (3, d.id)])
    assert activity(event.id)[-1] == (b.id, "leave_waitlist", "cancelled")
    assert_consistent(event.id, redis_client)
    # The closed gap is not a seat: the next one in still joins at the back.
    late = make_user()
    assert (services.register(event.id, late.id).position, sql_event(event.id)["capacity"]) == (
        4, 1)
    assert_consistent(event.id, redis_client)


def test_raising_capacity_promotes_in_order_and_lowering_below_confirmed_is_refused(
        app_ctx, make_event, make_user, counts, redis_client):
    event = make_event(capacity=2, waitlist_enabled=True, waitlist_capacity=10)
    x, y, a, b, c = (make_user() for _ in range(5))
    for person in (x, y, a, b, c):
        services.register(event.id, person.id)

    assert services.resize(event.id, 4) == [a.id, b.id]

    assert assert_consistent(event.id, redis_client) == ({x.id, y.id, a.id, b.id}, [c.id])
    assert [row for row in activity(event.id) if row[1] == "promote"] == [
        (a.id, "promote", "promoted"), (b.id, "promote", "promoted")]
    before_sql, before_redis = counts(event.id), redis_snapshot(redis_client, event.id)

    with pytest.raises(Invalid) as caught:
        services.resize(event.id, 3)

    assert caught.value.code == "capacity_below_confirmed"
    assert counts(event.id) == before_sql
    assert sql_event(event.id)["capacity"] == 4
    assert redis_snapshot(redis_client, event.id) == before_redis
    assert_consistent(event.id, redis_client)


# --- 3. one place per person ---------------------------------------------------

def test_a_waitlisted_person_registering_again_is_already_registered(
        app, app_ctx, make_event, make_user, counts, redis_client):
    event = make_event(capacity=1, waitlist_enabled=True, waitlist_capacity=10)
    seated, waiting = make_user(), make_user()
    services.register(event.id, seated.id)
    assert services.register(event.id, waiting.id).status == Status.WAITLISTED

    with pytest.raises(AlreadyRegistered):
        services.register(event.id, waiting.id)
    results = race(app, [lambda: services.register(event.id, waiting.id) for _ in range(10)])

    assert tally(results) == {"AlreadyRegistered": 10}
    c = counts(event.id)
    assert (c["confirmed"], c["waitlisted"]) == (1, 1)
    assert c["activity"] == {"confirmed": 1, "waitlisted": 1, "rejected_duplicate": 11}
    assert assert_consistent(event.id, redis_client) == ({seated.id}, [waiting.id])


def test_one_person_racing_for_the_last_seat_and_the_queue_gets_one_place(
        app, app_ctx, make_event, make_user, counts, redis_client):
    event = make_event(capacity=1, waitlist_enabled=True, waitlist_capacity=10)
    person = make_user()

    results = race(app, [lambda: services.register(event.id, person.id) for _ in range(15)])

    assert tally(results) == {Status.CONFIRMED: 1, "AlreadyRegistered": 14}
    assert assert_consistent(event.id, redis_client) == ({person.id}, [])


# --- 4. churn ------------------------------------------------------------------

def test_random_register_and_cancel_churn_keeps_every_invariant(
        app, app_ctx, make_event, make_user, redis_client):
    event = make_event(capacity=3, waitlist_enabled=True, waitlist_capacity=5)
    people = [make_user() for _ in range(12)]
    seen: Counter = Counter()
    lock = threading.Lock()

    def churn(seed: int):
        rng, done = random.Random(seed), Counter()
        for _ in range(8):
            person = rng.choice(people)
            try:
                if rng.random() < 0.6:
                    done[services.register(event.id, person.id).status] += 1
                else:
                    done["cancel:" + services.cancel(event.id, person.id).previous] += 1
            except (EventFull, AlreadyRegistered, NotRegistered) as exc:
                done[type(exc).__name__] += 1
        with lock:
            seen.update(done)
        return "ok"

    results = race(app, [lambda i=i: churn(1000 + i) for i in range(20)])

    assert results == ["ok"] * 20, [str(r.__cause__)[:3000] for r in results if r != "ok"]
    assert sum(seen.values()) == 160
    assert seen[Status.CONFIRMED] >= 3 and seen[Status.WAITLISTED] >= 1, seen  # the churn did churn
    k = EventKeys.for_event(event.id)
    assert redis_client.zcard(k.holds) + redis_client.zcard(k.wholds) == 0
    confirmed, waiting = sql_people(event.id)
    e = sql_event(event.id)
    assert len(confirmed) <= 3
    assert (e["confirmed_count"], e["waitlisted_count"]) == (len(confirmed), len(waiting))
    assert [p for p, _ in waiting] == list(range(1, len(waiting) + 1))
    assert not confirmed & {u for _, u in waiting}
    assert not (waiting and len(confirmed) < 3), "someone waits beside a free seat"
    reconcile_upcoming()
    assert_consistent(event.id, redis_client)


def test_a_seat_freed_while_a_newcomer_waits_for_the_lock_is_taken_not_queued_beside(
        app, app_ctx, make_event, make_user, redis_client):
    """Cancels racing newcomers at a full event, round after round. On PostgreSQL a
    newcomer's seat UPDATE can see the event full, then its waitlist UPDATE wait for a
    cancel's lock and re-read the row with a seat free: it must take that seat, never
    queue beside it (which made everyone after it queue too, a seat left empty)."""
    for _ in range(6):
        event = make_event(capacity=3, waitlist_enabled=True)
        holders = [make_user() for _ in range(3)]
        for holder in holders:
            services.register(event.id, holder.id)
        newcomers = [make_user() for _ in range(9)]
        e = event.id
        results = race(app, [lambda h=h, e=e: services.cancel(e, h.id) for h in holders]
                       + [lambda n=n, e=e: services.register(e, n.id) for n in newcomers])
        assert not [r for r in results if isinstance(r, Exception)], results
        # Nine people want three seats: three hold them, six wait, none beside a free seat,
        # as SQL has it right after the race (Redis's mirrors may land in another order
        # than the commits; reconcile, as in the churn test above, squares them).
        confirmed, waiting = sql_people(event.id)
        assert (len(confirmed), len(waiting)) == (3, 6), (confirmed, waiting)
        reconcile_upcoming()
        assert_consistent(event.id, redis_client)


# --- 5. a model, step by step --------------------------------------------------

def test_the_waitlist_behaves_like_a_confirmed_list_and_a_fifo_queue(
        app, app_ctx, make_event, make_user, redis_client):
    people = [make_user().id for _ in range(5)]
    organizer = make_user(organizer=True)
    person = st.sampled_from(people)

    class Waitlist(RuleBasedStateMachine):
        @initialize()
        def fresh_event(self):
            self.event_id = make_event(capacity=2, organizer=organizer, waitlist_enabled=True,
                                       waitlist_capacity=2).id
            self.capacity, self.confirmed, self.waiting = 2, [], []

        def promote(self) -> list[int]:
            moved = []
            while self.waiting and len(self.confirmed) < self.capacity:
                moved.append(self.waiting.pop(0))
                self.confirmed.append(moved[-1])
            return moved

        @rule(user=person)
        def register(self, user):
            if user in self.confirmed or user in self.waiting:
                with pytest.raises(AlreadyRegistered):
                    services.register(self.event_id, user)
            elif len(self.confirmed) < self.capacity and not self.waiting:
                out = services.register(self.event_id, user)
                assert (out.status, out.position) == (Status.CONFIRMED, None)
                self.confirmed.append(user)
            elif len(self.waiting) < 2:
                out = services.register(self.event_id, user)
                assert (out.status, out.position) == (Status.WAITLISTED, len(self.waiting) + 1)
                self.waiting.append(user)
            else:
                with pytest.raises(EventFull):
                    services.register(self.event_id, user)

        @rule(user=person)
        def cancel(self, user):
            if user in self.confirmed:
                self.confirmed.remove(user)
                expected = (Status.CONFIRMED, tuple(self.promote()))
            elif user in self.waiting:
                self.waiting.remove(user)
                expected = (Status.WAITLISTED, ())
            else:
                with pytest.raises(NotRegistered):
                    services.cancel(self.event_id, user)
                return
            out = services.cancel(self.event_id, user)
            assert (out.previous, out.promoted) == expected

        @rule(capacity=st.integers(1, 4))
        def resize(self, capacity):
            if capacity < len(self.confirmed):
                with pytest.raises(Invalid):
                    services.resize(self.event_id, capacity)
                return
            self.capacity = capacity
            assert services.resize(self.event_id, capacity) == self.promote()

        @invariant()
        def matches_the_model(self):
            confirmed, order = assert_consistent(self.event_id, redis_client)
            assert (confirmed, order) == (set(self.confirmed), self.waiting)
            assert sql_event(self.event_id)["capacity"] == self.capacity

    run_state_machine_as_test(Waitlist, settings=settings(
        max_examples=15, stateful_step_count=12, deadline=None, database=None))


# --- 6. a promotion that fails to commit ---------------------------------------

def test_a_failed_promotion_commit_changes_nothing_in_sql_or_redis(
        app_ctx, make_event, make_user, counts, redis_client):
    event = make_event(capacity=1, waitlist_enabled=True, waitlist_capacity=10)
    seated, a, b = make_user(), make_user(), make_user()
    for person in (seated, a, b):
        services.register(event.id, person.id)
    before_sql, before_redis = counts(event.id), redis_snapshot(redis_client, event.id)
    before_people = sql_people(event.id)
    fired = []

    promoting = []

    def note(_conn, _cursor, statement, parameters, *_):
        if statement.startswith("UPDATE registrations") and "'confirmed'" in str(parameters):
            promoting.append(True)

    def boom(_session):
        if promoting:
            fired.append(True)
            raise RuntimeError("connection lost at commit")

    sa_event.listen(Engine, "before_cursor_execute", note)
    sa_event.listen(Session, "before_commit", boom)
    try:
        with pytest.raises(Unavailable):
            services.cancel(event.id, seated.id)
    finally:
        sa_event.remove(Session, "before_commit", boom)
        sa_event.remove(Engine, "before_cursor_execute", note)

    assert fired == [True]
    assert sql_people(event.id) == before_people == ({seated.id}, [(1, a.id), (2, b.id)])
    assert queries.registration_status(event.id, seated.id) == Status.CONFIRMED
    assert counts(event.id) == before_sql
    assert redis_snapshot(redis_client, event.id) == before_redis
    # And with the fault gone the same cancellation promotes as it should.
    assert services.cancel(event.id, seated.id).promoted == (a.id,)
    assert assert_consistent(event.id, redis_client) == ({a.id}, [b.id])
