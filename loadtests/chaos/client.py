"""The careful client: its own X-Request-ID on every request, one Idempotency-Key per
operation, and retries with backoff when no answer or a 5xx came back (SPEC, "Faults and
retries": a repeat with the same key gets the first answer again)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from loadtests.chaos.history import CANCEL, INFO, OK, REGISTER, Attempt, HistoryFile, judge
from loadtests.common import DEFAULT_PASSWORD

HTTP_TIMEOUT = 20.0  # longer than any answer the SPEC allows ("within seconds")
ATTEMPTS = 5
BACKOFF = (0.5, 1.0, 2.0, 4.0)
MAX_RETRY_AFTER = 5.0


@dataclass(frozen=True)
class Person:
    index: int
    user_id: int
    email: str
    token: str


def sign_in(url: str, people: list[tuple[int, int, str]], threads: int = 16) -> list[Person]:
    """POST /api/auth/login for every (index, user id, email): bearer tokens, before any fault."""
    local = threading.local()

    def one(item: tuple[int, int, str]) -> Person:
        if not hasattr(local, "http"):
            local.http = requests.Session()
        index, user_id, email = item
        answer = local.http.post(f"{url}/api/auth/login", timeout=30,
                                 json={"email": email, "password": DEFAULT_PASSWORD})
        if answer.status_code != 200:
            raise RuntimeError(f"sign-in of {email}: {answer.status_code} {answer.text[:200]}")
        return Person(index, user_id, email, answer.json()["token"])

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, people))


@dataclass(frozen=True)
class Step:
    """One operation of a client's plan, `delay` seconds after the previous one ended
    (or after the release, for the first)."""

    op: str
    event_id: int
    delay: float
    only_if_ok: bool = False  # skip unless the previous operation was acknowledged


class CarefulClient:
    """One person doing their plan of operations, every attempt written to the history."""

    def __init__(self, url: str, person: Person, trial: int, client: int,
                 history: HistoryFile, rng: random.Random) -> None:
        self.url, self.person, self.trial, self.client = url, person, trial, client
        self.history, self.rng = history, rng
        self.http = requests.Session()
        self.ops = 0

    def run(self, plan: list[Step], go: threading.Event, give_up_at: float) -> None:
        go.wait()
        last = OK
        for step in plan:
            if step.only_if_ok and last != OK:
                break
            time.sleep(step.delay)
            if time.time() > give_up_at:
                break
            last = self.operate(step.op, step.event_id)
        self.http.close()

    def operate(self, op: str, event_id: int) -> str:
        """One operation, retried with the same key while the outcome is unknown;
        returns the outcome of its last attempt."""
        self.ops += 1
        op_id = f"{self.trial}.{self.client}.{self.ops}"
        key = uuid.uuid4().hex
        path = f"/api/events/{event_id}/registrations" + ("/me" if op == CANCEL else "")
        outcome = INFO
        for attempt in range(1, ATTEMPTS + 1):
            request_id = f"chaos-{op_id}-{attempt}-{uuid.uuid4().hex[:8]}"
            headers = {"Authorization": f"Bearer {self.person.token}",
                       "X-Request-ID": request_id, "Idempotency-Key": key}
            start = time.time()
            status = body = error = None
            retry_after = None
            try:
                if op == REGISTER:
                    answer = self.http.post(self.url + path, json={}, headers=headers,
                                            timeout=HTTP_TIMEOUT)
                else:
                    answer = self.http.delete(self.url + path, headers=headers,
                                              timeout=HTTP_TIMEOUT)
                status = answer.status_code
                retry_after = answer.headers.get("Retry-After")
                try:
                    body = answer.json() if answer.content else None
                except ValueError:
                    body = None
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {str(exc)[:160]}"
                self.http.close()  # a broken connection is not reused
                self.http = requests.Session()
            outcome, code, message, reg_id = judge(op, status, body)
            self.history.add(Attempt(
                trial=self.trial, client=self.client, user_id=self.person.user_id,
                event_id=event_id, op=op, op_id=op_id, key=key, attempt=attempt,
                request_id=request_id, start=start, end=time.time(), status=status,
                code=code, message=message, registration_id=reg_id, error=error,
                outcome=outcome, retry_after=retry_after))
            if outcome != INFO or attempt == ATTEMPTS:
                return outcome
            time.sleep(self.backoff(attempt, retry_after))
        return outcome

    def backoff(self, attempt: int, retry_after: str | None) -> float:
        """Retry-After when the server gave one (capped), else exponential, with jitter."""
        wait = BACKOFF[min(attempt - 1, len(BACKOFF) - 1)]
        if retry_after and retry_after.strip().isdigit():
            wait = min(float(retry_after), MAX_RETRY_AFTER)
        return wait * self.rng.uniform(0.8, 1.3)
