"""Races: every call on its own thread, all released at once by one barrier; their tallies."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import requests

HTTP_TIMEOUT = 30  # gunicorn's own worker timeout; an answer later than that is a hang


def release_together(calls: list[Callable], timeout: float = 60,
                     context: Callable[[], contextlib.AbstractContextManager] | None = None
                     ) -> list:
    """Run each call on its own thread (inside `context()` if given), all released by one
    barrier. Returns each call's result or the exception it raised, in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i: int, call: Callable) -> None:
        with context() if context else contextlib.nullcontext():
            barrier.wait(timeout)
            try:
                results[i] = call()
            except Exception as exc:  # the test inspects every outcome
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c), daemon=True)
               for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    return results


def race(app, calls: list[Callable], timeout: float = 60) -> list:
    """Service calls racing, each with its own app context of `app`."""
    return release_together(calls, timeout, context=app.app_context)


def tally(results: list) -> Counter:
    """Outcome status of each winner, exception class name of each loser."""
    from webapp.registrations.services import Outcome

    return Counter(r.status if isinstance(r, Outcome) else type(r).__name__ for r in results)


# --- over HTTP -------------------------------------------------------------------------

@dataclass
class Answer:
    """One click's answer as htmx would see it, with when it was sent and answered."""

    status: int | None
    hx_location: str | None
    text: str
    started: float
    finished: float
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def hx_location_path(response: requests.Response) -> str | None:
    raw = response.headers.get("HX-Location")
    if raw is None:
        return None
    return json.loads(raw)["path"] if raw.lstrip().startswith("{") else raw


def _timed(click: Callable[[], requests.Response]) -> Callable[[], Answer]:
    def run() -> Answer:
        started = time.perf_counter()
        try:
            response = click()
        except requests.RequestException as exc:
            return Answer(None, None, "", started, time.perf_counter(), repr(exc))
        return Answer(response.status_code, hx_location_path(response), response.text,
                      started, time.perf_counter())

    return run


def release_at_once(clicks: list[Callable[[], requests.Response]]) -> list[Answer]:
    """Run every click on its own thread, all released by one barrier; every answer kept."""
    answers = release_together([_timed(c) for c in clicks], timeout=HTTP_TIMEOUT + 60)
    assert all(isinstance(a, Answer) for a in answers), [a for a in answers
                                                         if not isinstance(a, Answer)]
    return answers
