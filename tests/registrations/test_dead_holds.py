"""A dead attempt's seat hold (issue 15, finding 3): no false "already registered", and a
false "full" for SEAT_HOLD_TRUST_MS at most, not for the hold's whole time to live.

The attempt dies in another process after the gate held a seat for it and before
SQL: its hold stays in Redis, its owner has no row.
"""

from __future__ import annotations

import multiprocessing
import time

import pytest

from tests.support.app import other_app
from tests.support.clients import Api, error_of
from tests.support.processes import wait_until
from tests.support.state import redis_seats

TRUST_MS = 600


@pytest.fixture
def short_trust(app, database_url, redis_url):
    """An app whose gate trusts a hold for TRUST_MS (the hold itself lives 60 s)."""
    with other_app(app, database_url, redis_url, SEAT_HOLD_TRUST_MS=TRUST_MS,
                   SEAT_HOLD_TTL_MS=60_000) as trusting:
        yield trusting


def _hold_and_die(database_url: str, redis_url: str, event_id: int, user_id: int) -> None:
    """In a process of its own: the gate holds a seat for user_id, then the process ends
    without SQL, without release (a web worker killed mid-attempt)."""
    from tests.support.app import base_config
    from webapp import create_app
    from webapp.registrations.gate import HELD, get_gate

    app = create_app(base_config(database_url, redis_url))
    with app.app_context():
        gate = get_gate()
        assert gate.reserve(event_id, user_id, gate.token()).status == HELD


def dead_hold(database_url, redis_url, event_id: int, user_id: int) -> None:
    """Leave a dead attempt's hold for user_id."""
    process = multiprocessing.get_context("spawn").Process(
        target=_hold_and_die, args=(database_url, redis_url, event_id, user_id))
    process.start()
    process.join(60)
    assert process.exitcode == 0, "the attempt that should hold a seat failed"


def hold_age(redis_client, event_id: int, user_id: int, ttl_ms: int = 60_000) -> float:
    """Seconds since the hold was taken, by Redis's clock (its expiry is taken + ttl)."""
    from webapp.registrations.gate import EventKeys

    expires = redis_client.zscore(EventKeys.for_event(event_id).holds, user_id)
    seconds, micros = redis_client.time()
    return (seconds * 1000 + micros / 1000 - (expires - ttl_ms)) / 1000


def test_a_dead_attempts_owner_is_not_already_registered(
        app, short_trust, make_event, make_user, database_url, redis_url, redis_client):
    event = make_event(capacity=2)
    owner = make_user()
    api = Api(short_trust)
    token = api.token(owner)
    dead_hold(database_url, redis_url, event.id, owner.id)
    assert len(redis_seats(redis_client, event.id)[0]) == 0  # held, not seated

    # At once, not after the hold's 60 s: SQL knows the owner has no place yet.
    mine = api.post(f"/api/events/{event.id}/registrations", token=token)
    assert mine.status_code == 201, mine.get_data(as_text=True)
    assert mine.get_json()["status"] == "confirmed"
    again = api.post(f"/api/events/{event.id}/registrations", token=token)
    assert error_of(again)["code"] == "already_registered"  # now it is true
    assert api.delete(f"/api/events/{event.id}/registrations/me", token=token
                      ).status_code == 204


def test_a_dead_hold_says_full_for_the_trust_window_at_most(
        app, short_trust, make_event, make_user, database_url, redis_url, redis_client):
    """The issue's reproduction: capacity 2, a dead hold for A, B takes a seat; C."""
    event = make_event(capacity=2)
    a, b, c = make_user(), make_user(), make_user()
    api = Api(short_trust)
    token_b, token_c = api.token(b), api.token(c)
    dead_hold(database_url, redis_url, event.id, a.id)
    assert api.post(f"/api/events/{event.id}/registrations", token=token_b).status_code == 201

    answers = []
    while True:
        age = hold_age(redis_client, event.id, a.id)
        response = api.post(f"/api/events/{event.id}/registrations", token=token_c)
        answers.append((age, response.status_code))
        if response.status_code == 201 or answers[-1][0] > 10:
            break
        assert error_of(response)["code"] == "event_full"
        time.sleep(0.05)

    window, status = answers[-1]
    assert status == 201, f"C was still refused after {window:.1f} s: {answers[-3:]}"
    # Refused only while the hold was young: its trust (0.6 s) plus one poll, not its 60 s.
    assert window < TRUST_MS / 1000 + 1.0, answers  # (one poll: a busy machine is slow)
    assert all(age < TRUST_MS / 1000 for age, _ in answers[:-1]), answers
    capacity = api.get(f"/api/events/{event.id}/capacity").get_json()
    assert capacity["confirmed"] == 2 and capacity["available"] == 0


def test_a_dead_process_holds_say_full_until_its_liveness_key_expires(
        app, database_url, redis_url, make_event, make_user, redis_client):
    """With a long trust (10 s), what ends the false "full" is the dead process's
    liveness key: ALIVE_MS after its last renewal, by the Redis clock."""
    from webapp.registrations.liveness import ALIVE_MS

    with other_app(app, database_url, redis_url, SEAT_HOLD_TRUST_MS=10_000) as trusting:
        event = make_event(capacity=1)
        a, c = make_user(), make_user()
        api = Api(trusting)
        token_c = api.token(c)
        dead_hold(database_url, redis_url, event.id, a.id)

        answers = []
        while True:
            age = hold_age(redis_client, event.id, a.id)
            response = api.post(f"/api/events/{event.id}/registrations", token=token_c)
            answers.append((age, response.status_code))
            if response.status_code == 201 or age > 9:
                break
            assert error_of(response)["code"] == "event_full"
            time.sleep(0.05)

    window, status = answers[-1]
    assert status == 201, answers[-3:]
    assert window < ALIVE_MS / 1000 + 1.0, answers  # the process lived ~0.1 s after its hold


def test_young_holds_still_turn_people_away_from_redis(
        app_ctx, make_event, make_user, counts, redis_client):
    """The fast path stays: a full event whose holds are young is full without SQL."""
    from webapp.errors import EventFull
    from webapp.registrations import services
    from webapp.registrations.gate import get_gate

    event = make_event(capacity=1)
    holder, late = make_user(), make_user()
    gate = get_gate()
    hold_token = gate.token()  # this process's, alive
    # (the test's Redis was emptied for this test: the next renewal, within 0.5 s)
    wait_until(lambda: redis_client.exists(f"turnout:alive:{hold_token.split('.')[0]}"),
               5, "this process's liveness key")
    assert gate.reserve(event.id, holder.id, hold_token).status == "held"
    with pytest.raises(EventFull):
        services.register(event.id, late.id)
    assert counts(event.id)["activity"] == {"rejected_full": 1}
