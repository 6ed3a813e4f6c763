"""One held event row (issue 15, finding 4): a bounded wait, then 503 busy at once.

A transaction elsewhere (an organizer's edit that hangs, psql) holds one event's
row. Attempts on that event wait for the lock timeout at most, then the event
is answered busy at once (webapp/registrations/stalls.py) until a probe gets the
lock again; every other event goes on as if nothing happened. PostgreSQL only:
SQLite locks the whole file, and its busy timeout bounds that wait.
"""

from __future__ import annotations

import time

import pytest

from tests.support.app import other_app
from tests.support.faults import row_held
from webapp.errors import Busy
from webapp.registrations import services
from webapp.registrations.models import Status
from webapp.registrations.stalls import stalls

LOCK_TIMEOUT_MS = 300
STALL_SECONDS = 1


@pytest.fixture
def short_waits(app, backend, database_url, redis_url):
    """An app that waits LOCK_TIMEOUT_MS for a lock and pauses an event STALL_SECONDS."""
    if backend != "postgresql":
        pytest.skip("SQLite locks the whole database file; SQLITE_BUSY_TIMEOUT_MS bounds it")
    with other_app(app, database_url, redis_url, DB_LOCK_TIMEOUT_MS=LOCK_TIMEOUT_MS,
                   STALL_SECONDS=STALL_SECONDS) as short:
        yield short


@pytest.fixture
def bounded(short_waits):
    """short_waits, its app context pushed, to call services."""
    with short_waits.app_context():
        yield short_waits


def test_a_held_event_row_is_busy_after_the_lock_timeout_then_at_once(
        bounded, make_event, make_user, counts, database_url):
    held, other = make_event(capacity=5), make_event(capacity=5)
    people = [make_user() for _ in range(4)]

    with row_held(database_url, held.id):
        started = time.monotonic()
        with pytest.raises(Busy) as first:
            services.register(held.id, people[0].id)
        waited = time.monotonic() - started
        assert LOCK_TIMEOUT_MS / 1000 <= waited < 3, waited
        assert "Nothing was saved" in first.value.message and first.value.retry_after

        started = time.monotonic()
        with pytest.raises(Busy):
            services.register(held.id, people[1].id)
        assert time.monotonic() - started < LOCK_TIMEOUT_MS / 1000, "it waited again"
        assert stalls().paused(held.id)

        # Another event is not touched by it.
        assert services.register(other.id, people[2].id).status == Status.CONFIRMED

    time.sleep(STALL_SECONDS + 0.1)
    # The lock is free: the next attempt probes, gets it, and the pause ends.
    assert services.register(held.id, people[1].id).status == Status.CONFIRMED
    assert not stalls().paused(held.id)
    c = counts(held.id)
    assert (c["confirmed"], c["confirmed_count"]) == (1, 1)
    assert c["activity"] == {"confirmed": 1, "failed": 2}


def test_a_cancel_on_a_held_event_is_busy_and_unchanged(
        bounded, make_event, make_user, counts, database_url):
    event = make_event(capacity=5)
    person = make_user()
    services.register(event.id, person.id)

    with row_held(database_url, event.id), pytest.raises(Busy) as caught:
        services.cancel(event.id, person.id)

    assert "unchanged" in caught.value.message
    assert counts(event.id)["confirmed"] == 1


def test_the_panel_says_busy_and_to_try_again_with_retry_after(
        short_waits, make_event, make_user, database_url):
    from tests.support.clients import Client

    event = make_event(capacity=5)
    person = make_user()
    client = Client(short_waits.test_client())
    assert client.login(person.email).status_code == 303

    with row_held(database_url, event.id):
        response = client.post(f"/events/{event.id}/register", htmx=True)

    body = response.get_data(as_text=True)
    assert response.status_code == 503, body
    assert response.headers["Retry-After"]
    assert 'id="registration-panel"' in body and "try again" in body
    assert "Nothing was saved" in body
    assert ">Register<" in body  # the button stays for the next try
