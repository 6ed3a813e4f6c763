"""A real gunicorn for the live tests: started once per backend per module, stopped after.

The server is module-scoped while `app` (which empties SQL and Redis) stays
function-scoped: each test still starts from clean data, and the server keeps
no state of its own between tests that SQL or Redis would not rebuild.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import FAST_HASH, ROOT, free_port

STARTUP_SECONDS = 45
STOP_SECONDS = 15
# Settings the developer's shell might carry that would change what the server does.
_INHERITED_OUT = re.compile(r"^(TURNOUT_|SEAT_|GUNICORN_|WEB_CONCURRENCY$|PORT$|RATELIMIT_|"
                            r"DATABASE_URL$|REDIS_URL$|SECRET_KEY$|PASSWORD_HASH_METHOD$)")
# What counts as trouble in gunicorn's combined log: its own errors, a turnout JSON
# line at error level, a traceback, or an access-log line with a 5xx status.
_PROBLEM = re.compile(r"\[(ERROR|CRITICAL)\]|WORKER TIMEOUT|Traceback|"
                      r'"level": "(error|critical)"|" 5\d\d ')


class LiveServer:
    """One gunicorn process tree, its base URL and its log (stdout and stderr together)."""

    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path, workers: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.workers = workers

    def __repr__(self) -> str:
        return f"<LiveServer {self.url} pid={self.proc.pid} log={self.log_path}>"

    def log_mark(self) -> int:
        """Where the log ends now; pass it to log_since() / problems_since()."""
        return self.log_path.stat().st_size

    def log_since(self, mark: int = 0) -> str:
        with self.log_path.open("rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")

    def problems_since(self, mark: int = 0) -> list[str]:
        return [line for line in self.log_since(mark).splitlines() if _PROBLEM.search(line)]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_since().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_until_ready(self, deadline: float) -> None:
        """Until every worker has loaded the app and answers (a first answer is not enough)."""
        while True:
            if not self.alive():
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer in {STARTUP_SECONDS} s:\n"
                                   f"{self.log_tail()}")
            try:
                if requests.get(self.url + "/login", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        # Workers load the app one by one; a burst of parallel requests is only
        # served quickly once they all accept, so the first race is not a cold start.
        while self.log_since().count("Booting worker") < self.workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all gunicorn workers booted:\n{self.log_tail()}")
            time.sleep(0.1)
        with ThreadPoolExecutor(max_workers=self.workers * 4) as pool:
            for status in pool.map(
                    lambda _: requests.get(self.url + "/login", timeout=10).status_code,
                    range(self.workers * 8)):
                if status != 200:
                    raise RuntimeError(f"warm-up answered {status}:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the master (graceful), then SIGKILL whatever of the tree is left."""
        try:
            family = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(
                recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_SECONDS)
        _gone, left = psutil.wait_procs(family, timeout=5)
        for process in left:  # only workers of this very server, by pid
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def server_env(database_url: str, redis_url: str, instance_dir: Path,
               extra_env: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _INHERITED_OUT.match(k)}
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "live-test-secret-key-not-for-production",
        "TURNOUT_TESTING": "1",
        "RATELIMIT_ENABLED": "0",
        "PASSWORD_HASH_METHOD": FAST_HASH,
        "TURNOUT_INSTANCE": str(instance_dir),
        "PYTHONUNBUFFERED": "1",
        # gunicorn >= 25.1 opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl (else
        # ~/.gunicorn/): one per server here, so parallel servers do not take each other's.
        "XDG_RUNTIME_DIR": str(instance_dir),
    })
    env.update(extra_env or {})
    return env


def start_live_server(database_url: str, redis_url: str, *, extra_env: dict[str, str] | None = None,
                      workdir: Path | None = None, workers: int = 4, threads: int = 8,
                      attempts: int = 3, conf_file: str = "deploy/gunicorn.conf.py") -> LiveServer:
    """Start `gunicorn -c deploy/gunicorn.conf.py wsgi:app` on a free port and wait for it.

    `workdir` (a pytest tmp dir, kept for the last runs) holds the instance folder
    and gunicorn's log.
    """
    instance_dir = Path(workdir or tempfile.mkdtemp(prefix="turnout-live-"))
    env = server_env(database_url, redis_url, instance_dir, extra_env)
    for attempt in range(1, attempts + 1):
        port = free_port()
        log_path = instance_dir / f"gunicorn-{port}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", conf_file,
                 "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                 "--threads", str(threads), "wsgi:app"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = LiveServer(proc, port, log_path, workers)
        try:
            server.wait_until_ready(time.monotonic() + STARTUP_SECONDS)
        except RuntimeError:
            server.stop()
            # Another process may have taken the port between free_port() and bind.
            if attempt < attempts and "Address already in use" in server.log_since():
                continue
            raise
        return server
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def live_server_factory(database_url, redis_url, tmp_path_factory) -> Iterator:
    """live_server_factory(**extra_env) -> LiveServer on this module's backend.

    For the control run: live_server_factory(TURNOUT_UNSAFE_SEAT_GUARDS_OFF="1",
    TURNOUT_UNSAFE_RACE_WINDOW_MS="50"). One server runs at a time: asking for
    another variant stops the current one. Three idle servers of 4 workers hold
    enough pooled connections for a race to hit PostgreSQL's max_connections
    (100 by default), which then answers "too many clients" as 500s.
    """
    current: dict[tuple, LiveServer] = {}

    def start(**extra_env: str) -> LiveServer:
        key = tuple(sorted(extra_env.items()))
        server = current.get(key)
        if server is not None and server.alive():
            return server
        for other in current.values():
            other.stop()
        current.clear()
        current[key] = start_live_server(database_url, redis_url, extra_env=extra_env,
                                         workdir=tmp_path_factory.mktemp("gunicorn"))
        return current[key]

    yield start
    for server in current.values():
        server.stop()


@pytest.fixture
def live_server(live_server_factory) -> LiveServer:
    """The production configuration (guards on): started once per module and backend,
    unless a test in between asked the factory for another variant."""
    return live_server_factory()
