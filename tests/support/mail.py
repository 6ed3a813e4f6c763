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
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from tests.support.live import server_env
from tests.support.processes import Service, free_port

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


def start_smtp(catcher: SmtpCatcher, attempts: int = 5):
    """The catcher's SMTP server on a free port (catcher.port): the started Controller."""
    from aiosmtpd.controller import Controller

    for _ in range(attempts):
        catcher.port = free_port()
        controller = Controller(catcher, hostname="127.0.0.1", port=catcher.port)
        try:
            controller.start()
            return controller
        except (OSError, RuntimeError):  # the port was taken in between
            continue
    raise RuntimeError("could not start the SMTP test server")


def stop_smtp(catcher: SmtpCatcher, controller) -> None:
    catcher.release.set()
    controller.stop()


def worker_env(database_url: str, redis_url: str, smtp_port: int, instance_dir: Path,
               **extra: str) -> dict[str, str]:
    """A worker's environment: these databases, this SMTP server, FAST_MAIL timings."""
    return server_env(database_url, redis_url, instance_dir, {
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp_port),
        **{k: ",".join(map(str, v)) if isinstance(v, list) else str(v)
           for k, v in FAST_MAIL.items()},
        "RECONCILE_INTERVAL_SECONDS": "3600",
        **extra,
    })


class WorkerProcess(Service):
    """`python -m workers` in its own process group: SIGKILL takes the worker, its
    work-horse and its upkeep process at once, as a crash or an OOM kill would."""

    def __init__(self, env: dict[str, str], log_path: Path, name: str = "worker") -> None:
        super().__init__(name, [sys.executable, "-m", "workers"], log_path, env)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):  # a horse left behind
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()

    def log(self) -> str:
        return self.log_text()
