"""One line of a campaign's history: an HTTP attempt, what it asked, what came back, and
whether its outcome is known (Jepsen's ok / fail / info)."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

OK, FAIL, INFO = "ok", "fail", "info"
REGISTER, CANCEL = "register", "cancel"


@dataclass(frozen=True)
class Attempt:
    """One HTTP request of a client's operation (a retry is another attempt, same key)."""

    trial: int
    client: int
    user_id: int
    event_id: int
    op: str  # REGISTER | CANCEL
    op_id: str
    key: str  # Idempotency-Key: the same for every attempt of one operation
    attempt: int
    request_id: str  # X-Request-ID: one per attempt
    start: float  # epoch seconds
    end: float
    status: int | None  # None: no answer (refused, reset, timed out)
    code: str | None  # error code, or the registration's status, or "cancelled"
    message: str | None = None
    registration_id: int | None = None
    error: str | None = None  # what went wrong below HTTP
    outcome: str = INFO
    retry_after: str | None = None  # the Retry-After header, when the answer had one

    @property
    def answered(self) -> bool:
        return self.status is not None and self.status < 500

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> Attempt:
        return cls(**json.loads(line))


def judge(op: str, status: int | None, body: object) -> tuple[str, str | None, str | None,
                                                             int | None]:
    """(outcome, code, message, registration id) of one answer.

    2xx is ok; a 4xx is a definite fail (nothing happened, and the client knows why);
    no answer or a 5xx is info: the operation may or may not have happened.
    """
    body = body if isinstance(body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    if status is None or status >= 500:
        return INFO, error.get("code"), error.get("message"), None
    if 200 <= status < 300:
        if op == CANCEL:
            return OK, "cancelled", None, None
        reg_id = body.get("id")
        return OK, body.get("status"), None, reg_id if isinstance(reg_id, int) else None
    return FAIL, error.get("code"), error.get("message"), None


class HistoryFile:
    """A jsonl file many client threads append to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = path.open("a")
        self.attempts: list[Attempt] = []

    def add(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)
            self._file.write(attempt.to_json() + "\n")

    def close(self) -> None:
        self._file.close()


def read_history(path: Path) -> list[Attempt]:
    return [Attempt.from_json(line) for line in path.read_text().splitlines() if line.strip()]
