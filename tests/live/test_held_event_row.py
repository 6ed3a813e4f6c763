"""One held event row must not take the threads of every other event (issue 15, finding 4).

Before: a transaction holding one event's row for 65 s tied up all 16 gunicorn
threads and registrations for every event stopped for 67 s. Here gunicorn has
1 worker x 4 threads; 16 people hammer the held event while one person
registers for another event: that answer must come within seconds, and the
held event's people get 503 busy with Retry-After, never a hang or a 500.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.app import PASSWORD
from tests.support.faults import hold_row_for
from tests.support.live import start_live_server

HOLD_SECONDS = 12


@pytest.fixture
def small_server(backend, database_url, redis_url, tmp_path):
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite locks the whole file")
    server = start_live_server(database_url, redis_url, workers=1, threads=4, workdir=tmp_path,
                               extra_env={"RATELIMIT_ENABLED": "0"})
    yield server
    server.stop()


def test_other_events_keep_their_answers_while_one_event_row_is_held(
        app, small_server, make_event, make_user, database_url):
    held, other = make_event(capacity=50), make_event(capacity=50)
    people = [make_user() for _ in range(17)]
    tokens = [_token(small_server.url, p.email) for p in people]

    def register(event_id: int, token: str) -> tuple[int, float, dict]:
        started = time.monotonic()
        response = requests.post(f"{small_server.url}/api/events/{event_id}/registrations",
                                 headers={"Authorization": f"Bearer {token}"}, timeout=60)
        return response.status_code, time.monotonic() - started, dict(response.headers)

    holder = hold_row_for(database_url, held.id, HOLD_SECONDS)
    with ThreadPoolExecutor(16) as pool:
        crowd = [pool.submit(register, held.id, t) for t in tokens[:16]]
        time.sleep(0.5)  # the crowd has every thread of the server now
        status, seconds, _ = register(other.id, tokens[16])
        answers = [f.result() for f in crowd]
    still_held = holder.is_alive()
    holder.join()

    assert status == 201
    assert seconds < 6, f"another event waited {seconds:.1f} s behind the held row"
    assert still_held, "the row was released before the crowd was answered"
    assert {s for s, _, _ in answers} == {503}, answers
    assert all(h.get("Retry-After") for _, _, h in answers)


def _token(base_url: str, email: str) -> str:
    response = requests.post(f"{base_url}/api/auth/login",
                             json={"email": email, "password": PASSWORD}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["token"]
