"""Locust scenario *browse and register*: people with think time, as a day of real traffic looks.

    locust -f loadtests/browse.py --headless -u 300 -r 50 -t 60s --host http://127.0.0.1:8000

Each person signs in through the form, then, with 1-3 s of thinking between
steps: looks at the event list, opens events, registers through the htmx panel
(following HX-Location to the confirmation page like htmx does), sometimes
cancels, and checks "My Registered Events". Every answer is judged by content.

Parameters (environment; loadtests/bench/scenarios.py sets them):

    TURNOUT_LOAD_EVENT_IDS     comma-separated events people pick from (required)
    TURNOUT_LOAD_FIRST_USER    index of the first account; each Locust user takes the next
    TURNOUT_LOAD_PASSWORD      their password
    TURNOUT_LOAD_THINK         think time range in seconds, "min,max" (default "1,3")
    TURNOUT_LOAD_OUT           where to write the register attempts per event (JSON), so the
                               bench can check one activity row per attempt
"""

from __future__ import annotations

import itertools
import json
import random

from locust import FastHttpUser, between, events, task

from loadtests.common import (
    ALREADY_ANSWER,
    CONFIRMED,
    DEFAULT_PASSWORD,
    FULL_ANSWER,
    MY_EVENTS,
    PANEL,
    WAITLISTED,
    classify_htmx_cancel,
    classify_htmx_register,
    email_of,
    htmx_sign_in,
    setting,
)

EVENT_IDS = [int(e) for e in setting("EVENT_IDS", "0").split(",") if e.strip()]
FIRST_USER = int(setting("FIRST_USER", "1"))
PASSWORD = setting("PASSWORD", DEFAULT_PASSWORD)
THINK = tuple(float(x) for x in setting("THINK", "1,3").split(","))
OUT = setting("OUT", "")

_indices = itertools.count(FIRST_USER)
# What the server was asked, per event: the SQL check compares it with the activity log.
attempts: dict[int, dict[str, int]] = {}


def _count(event_id: int, what: str) -> None:
    per_event = attempts.setdefault(event_id, {})
    per_event[what] = per_event.get(what, 0) + 1


@events.test_stop.add_listener
def _write(**_kwargs) -> None:
    if OUT:
        with open(OUT, "w") as f:
            json.dump({"attempts": {str(k): v for k, v in attempts.items()}}, f)


class BrowseUser(FastHttpUser):
    wait_time = between(*THINK)
    network_timeout = 60.0
    connection_timeout = 60.0

    def on_start(self) -> None:
        self.email = email_of(next(_indices))
        self.holding: set[int] = set()
        self.csrf = htmx_sign_in(self.client, self.email, PASSWORD, "/")

    def _htmx(self) -> dict[str, str]:
        return {"HX-Request": "true", "X-CSRFToken": self.csrf or ""}

    @task(3)
    def event_list(self) -> None:
        with self.client.get("/", name="GET /", catch_response=True) as page:
            text = page.text or ""
            if page.status_code == 200 and all(f"/events/{e}" in text for e in EVENT_IDS[:1]):
                page.success()
            else:
                page.failure(f"event list: {page.status_code}, events missing")

    @task(4)
    def event_page(self) -> None:
        event_id = random.choice(EVENT_IDS)
        with self.client.get(f"/events/{event_id}", name="GET /events/[id]",
                             catch_response=True) as page:
            if page.status_code == 200 and PANEL in (page.text or ""):
                page.success()
            else:
                page.failure(f"event page: {page.status_code}, no registration panel")

    @task(3)
    def register(self) -> None:
        if self.csrf is None:
            return
        event_id = random.choice(EVENT_IDS)
        with self.client.post(f"/events/{event_id}/register", data=b"",
                              name="POST /events/[id]/register (htmx)", catch_response=True,
                              headers=self._htmx()) as answer:
            outcome = classify_htmx_register(answer.status_code, answer.headers or {},
                                             answer.text or "", event_id)
            if answer.status_code:  # the server answered: it was an attempt
                _count(event_id, "register")
            if outcome in (CONFIRMED, WAITLISTED):
                self.holding.add(event_id)
            if outcome in (CONFIRMED, WAITLISTED, FULL_ANSWER, ALREADY_ANSWER):
                answer.success()
            else:
                answer.failure(f"misclassified answer {answer.status_code}: "
                               f"{(answer.text or '')[:200]!r}")
                return
        if outcome == CONFIRMED:  # htmx follows HX-Location into #main
            with self.client.get(f"/events/{event_id}/confirmation", headers=self._htmx(),
                                 name="GET /events/[id]/confirmation (htmx)",
                                 catch_response=True) as page:
                if page.status_code == 200 and "You are already registered" in (page.text or ""):
                    page.success()
                else:
                    page.failure(f"confirmation: {page.status_code}, not registered")

    @task(1)
    def cancel(self) -> None:
        if self.csrf is None or not self.holding:
            return
        event_id = random.choice(sorted(self.holding))
        with self.client.post(f"/events/{event_id}/cancel", data=b"",
                              name="POST /events/[id]/cancel (htmx)", catch_response=True,
                              headers=self._htmx()) as answer:
            if answer.status_code:
                _count(event_id, "cancel")
            if classify_htmx_cancel(answer.status_code, answer.text or ""):
                self.holding.discard(event_id)
                answer.success()
            else:
                answer.failure(f"cancel: {answer.status_code}: {(answer.text or '')[:200]!r}")

    @task(2)
    def my_events(self) -> None:
        with self.client.get("/me/events", name="GET /me/events", catch_response=True) as page:
            if page.status_code == 200 and MY_EVENTS in (page.text or ""):
                page.success()
            else:
                page.failure(f"My Registered Events: {page.status_code}")
