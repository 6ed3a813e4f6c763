"""Locust scenario *rush*: N signed-in people press Register on one event at the same moment.

    locust -f loadtests/rush.py --headless -u 1000 -r 1000 --host http://127.0.0.1:8000 \\
        HtmxRushUser          # or ApiRushUser

Parameters come from the environment (loadtests/bench/scenarios.py sets them):

    TURNOUT_LOAD_EVENT_ID      the event everyone registers for (required)
    TURNOUT_LOAD_PEOPLE        how many people take part; the barrier waits for all (= -u)
    TURNOUT_LOAD_FIRST_USER    index of the first account (person000001@bench.turnout.test ...)
    TURNOUT_LOAD_PASSWORD      their password
    TURNOUT_LOAD_OUT           where to write every answer as JSON (optional)
    TURNOUT_LOAD_READY_SECONDS how long to wait for everyone to sign in (default 300)

Each person signs in first (HtmxRushUser: the real /login form, then the event
page for the CSRF token htmx sends; ApiRushUser: POST /api/auth/login for a
bearer token). Nobody clicks until everyone is ready: a barrier in this
process releases all clicks at once, so run the rush in ONE Locust process.
Every answer is classified by content (loadtests/common.py); a misclassified
answer is a Locust failure. When the last answer is in, Locust stops.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid

import gevent
from gevent.event import Event as Signal
from locust import FastHttpUser, constant, events, task

from loadtests.common import (
    CONFIRMED,
    DEFAULT_PASSWORD,
    FULL_ANSWER,
    WRONG,
    classify_api_register,
    classify_htmx_register,
    email_of,
    htmx_sign_in,
    setting,
    transport_error,
)


class Rush:
    """The barrier and the answers, shared by every user of this Locust process."""

    def __init__(self) -> None:
        self.event_id = int(setting("EVENT_ID"))
        self.people = int(setting("PEOPLE", "1000"))
        self.first = int(setting("FIRST_USER", "1"))
        self.password = setting("PASSWORD", DEFAULT_PASSWORD)
        self.out = setting("OUT", "")
        self.ready_seconds = float(setting("READY_SECONDS", "300"))
        # Signing in 1000 people takes longer than gunicorn keeps an idle connection
        # (keepalive 5 s): click on a new connection, as a browser would then.
        self.fresh_connection = setting("FRESH_CONNECTION", "1") == "1"
        self.indices = itertools.count(self.first)
        self.arrived = 0
        self.go = Signal()
        self.released_at: float | None = None
        self.first_ready_at: float | None = None
        self.answers: list[dict] = []
        self.finished = Signal()

    def arrive(self) -> None:
        self.arrived += 1
        if self.first_ready_at is None:
            self.first_ready_at = time.time()
        if self.arrived >= self.people and not self.go.is_set():
            self.released_at = time.time()
            print(f"[rush] all {self.arrived} people ready; releasing every click now",
                  flush=True)
            self.go.set()

    def answer(self, environment, record: dict) -> None:
        self.answers.append(record)
        if len(self.answers) >= self.people and not self.finished.is_set():
            self.finished.set()
            self.write()
            # Stop Locust from outside the user greenlets (quit() kills them).
            gevent.spawn_later(0.2, environment.runner.quit)

    def write(self) -> None:
        tally: dict[str, int] = {}
        for record in self.answers:
            tally[record["outcome"]] = tally.get(record["outcome"], 0) + 1
        summary = {"event_id": self.event_id, "people": self.people,
                   "released_at": self.released_at, "first_ready_at": self.first_ready_at,
                   "tally": tally, "answers": self.answers}
        print(f"[rush] answers: {json.dumps(tally)}", flush=True)
        if self.out:
            with open(self.out, "w") as f:
                json.dump(summary, f)


_rush: Rush | None = None


def rush() -> Rush:
    global _rush
    if _rush is None:
        _rush = Rush()
    return _rush


@events.test_stop.add_listener
def _write_partial(**_kwargs) -> None:
    """Locust stopped early (time limit, Ctrl-C): keep what we have."""
    if _rush is not None and not _rush.finished.is_set():
        _rush.write()


def _detail(answer) -> str:
    return transport_error(answer) or f"{answer.status_code}: {(answer.text or '')[:200]!r}"


class _RushUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)
    network_timeout = 60.0
    connection_timeout = 60.0
    label = "rush"

    def on_start(self) -> None:
        state = rush()
        self.index = next(state.indices)
        self.email = email_of(self.index)
        self.ready = False
        self.clicked = False
        self.click_key = uuid.uuid4().hex  # the page's Register form carries one
        try:
            self.ready = self.sign_in(state)
        finally:
            state.arrive()

    @task
    def register_once(self) -> None:
        state = rush()
        if self.clicked:  # one click per person: wait for Locust to quit
            Signal().wait()
        self.clicked = True
        if not state.go.wait(timeout=state.ready_seconds):
            raise RuntimeError("the rush was never released: not everyone signed in")
        started = time.time()
        t0 = time.perf_counter()
        if self.ready:
            outcome, status, detail = self.click(state)
        else:
            outcome, status, detail = WRONG, None, "could not sign in"
        state.answer(self.environment, {
            "email": self.email, "outcome": outcome, "status": status, "detail": detail,
            "started": started, "seconds": time.perf_counter() - t0,
        })
        state.finished.wait()  # Locust quits after the last answer

    def sign_in(self, state: Rush) -> bool:
        raise NotImplementedError

    def click(self, state: Rush) -> tuple[str, int | None, str | None]:
        raise NotImplementedError


class HtmxRushUser(_RushUser):
    """The browser's way: session cookie, CSRF token from the page, HX-Request."""

    def sign_in(self, state: Rush) -> bool:
        page = f"/events/{state.event_id}"
        self.csrf = htmx_sign_in(self.client, self.email, state.password, page,
                                 close_after=state.fresh_connection)
        return self.csrf is not None

    def click(self, state: Rush) -> tuple[str, int | None, str | None]:
        path = f"/events/{state.event_id}/register"
        with self.client.post(
                path, name="POST /events/[id]/register (htmx rush)", catch_response=True,
                # htmx sends the form's inputs: the Register form's own Idempotency-Key
                data={"idempotency_key": self.click_key}, headers={
                    "HX-Request": "true", "X-CSRFToken": self.csrf,
                    "HX-Current-URL": f"{self.host}/events/{state.event_id}",
                    "HX-Target": "registration-panel"}) as answer:
            outcome = classify_htmx_register(answer.status_code, answer.headers or {},
                                             answer.text or "", state.event_id)
            if outcome in (CONFIRMED, FULL_ANSWER):
                answer.success()
                return outcome, answer.status_code, None
            detail = _detail(answer)
            answer.failure(f"misclassified answer {detail}")
            return WRONG, answer.status_code, detail


class ApiRushUser(_RushUser):
    """A script's way: POST /api/auth/login for a bearer token, then the JSON API."""

    def sign_in(self, state: Rush) -> bool:
        with self.client.post("/api/auth/login", name="POST /api/auth/login",
                              json={"email": self.email, "password": state.password},
                              headers={"Connection": "close"} if state.fresh_connection else {},
                              catch_response=True) as signed:
            try:
                token = signed.json().get("token") if signed.status_code == 200 else None
            except (ValueError, TypeError, AttributeError):
                token = None
            if not token:
                signed.failure(f"API sign-in answered {signed.status_code}")
                return False
            signed.success()
        self.bearer = f"Bearer {token}"
        return True

    def click(self, state: Rush) -> tuple[str, int | None, str | None]:
        path = f"/api/events/{state.event_id}/registrations"
        with self.client.post(path, name="POST /api/events/[id]/registrations (rush)",
                              json={}, catch_response=True,
                              headers={"Authorization": self.bearer,
                                       "Idempotency-Key": self.click_key}) as answer:
            outcome = classify_api_register(answer.status_code, answer.text or "")
            if outcome in (CONFIRMED, FULL_ANSWER):
                answer.success()
                return outcome, answer.status_code, None
            detail = _detail(answer)
            answer.failure(f"misclassified answer {detail}")
            return WRONG, answer.status_code, detail
