"""A real SMTP server (aiosmtpd) that can be told how to answer, and a real worker process."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import ROOT, free_port
from tests.live.conftest import server_env


@dataclass
class SmtpCatcher:
    """aiosmtpd handler. `answers` are taken one per DATA command (then 250);
    `hold` makes DATA wait for `release` before answering; `keep_before_hold`
    keeps the message before waiting (the server accepted it, the client never
    heard), otherwise only a 250 answer keeps it."""

    port: int = 0
    answers: list[str] = field(default_factory=list)
    hold: bool = False
    keep_before_hold: bool = False
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    data_commands: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        with self.lock:
            self.data_commands += 1
            answer = self.answers.pop(0) if self.answers else "250 OK"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        if self.hold and self.keep_before_hold:
            self._keep(parsed, envelope)
        if self.hold:
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
        if answer.startswith("250") and not (self.hold and self.keep_before_hold):
            self._keep(parsed, envelope)
        return answer

    def _keep(self, parsed, envelope) -> None:
        with self.lock:
            self.messages.append(parsed)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))

    def wait_for(self, count: int, seconds: float = 20) -> list[EmailMessage]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} message(s) within {seconds}s, "
                             f"got {len(self.messages)} ({self.data_commands} DATA commands)")


@pytest.fixture
def smtp() -> Iterator[SmtpCatcher]:
    catcher = SmtpCatcher()
    for _ in range(5):
        catcher.port = free_port()
        controller = Controller(catcher, hostname="127.0.0.1", port=catcher.port)
        try:
            controller.start()
            break
        except (OSError, RuntimeError):  # the port was taken in between
            continue
    else:
        pytest.fail("could not start the SMTP test server")
    try:
        yield catcher
    finally:
        catcher.release.set()
        controller.stop()


# Fast timings so that retries, leases and the sweeper happen within a test.
FAST_MAIL = {
    "MAIL_RETRY_INTERVALS": [1, 1, 1],
    "MAIL_TIMEOUT_SECONDS": 2,
    "MAIL_JOB_TIMEOUT_SECONDS": 4,
    "MAIL_SEND_LEASE_SECONDS": 5,
    "OUTBOX_GRACE_SECONDS": 1,
    "OUTBOX_SWEEP_INTERVAL_SECONDS": 1,
    "PUBLIC_URL": "https://turnout.example",
}


@pytest.fixture
def app_config(smtp) -> dict:
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp.port, **FAST_MAIL}


class WorkerProcess:
    """`python -m workers` in its own process group: SIGKILL takes the worker, its
    work-horse and its upkeep process at once, as a crash or an OOM kill would."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):  # a horse left behind
            os.killpg(self.proc.pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker(app, smtp, tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    """start_worker(**env) -> a running worker on the test's database, Redis and SMTP server."""
    started: list[WorkerProcess] = []

    def start(**extra: str) -> WorkerProcess:
        env = server_env(app.config["SQLALCHEMY_DATABASE_URI"], app.config["REDIS_URL"],
                         tmp_path, {
                             "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp.port),
                             **{k: ",".join(map(str, v)) if isinstance(v, list) else str(v)
                                for k, v in FAST_MAIL.items()},
                             "RECONCILE_INTERVAL_SECONDS": "3600",
                             **extra,
                         })
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_until(predicate: Callable[[], object], seconds: float = 20, what: str = "") -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what or predicate}")
