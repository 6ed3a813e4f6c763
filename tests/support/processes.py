"""Processes the suite and the bench start: free ports, process trees stopped by pid, waiting."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]

# Settings of the developer's shell that would change what a server we start does.
INHERITED_OUT = re.compile(r"^(TURNOUT_|SEAT_|GUNICORN_|WEB_CONCURRENCY$|PORT$|RATELIMIT_|"
                           r"DATABASE_URL$|REDIS_URL$|SECRET_KEY$|PASSWORD_HASH_METHOD$|"
                           r"MAIL_|PROXY_FIX_)")


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without the settings above, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not INHERITED_OUT.match(k)}
    env.update(settings)
    return env


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], seconds: float = 20, what: str = "") -> object:
    """The first truthy value of predicate(), polled every 50 ms; AssertionError on timeout."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what or predicate}")


def wait_for_port(port: int, process: subprocess.Popen, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)


class Service:
    """One process tree we started, its output (stdout and stderr together) in a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str], *,
                 cwd: Path = ROOT, new_session: bool = True) -> None:
        self.name, self.argv, self.log_path = name, argv, log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=new_session)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 20, sig: int = signal.SIGTERM) -> None:
        """`sig` to the root (graceful), then SIGKILL whatever of its tree is left."""
        family = self.processes()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        _gone, left = psutil.wait_procs(family, timeout=5)
        for process in left:  # only processes of this very tree, by pid
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self._log.close()
