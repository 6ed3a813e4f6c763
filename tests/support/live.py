"""Real gunicorn servers on free ports for the live tests, the browser tests and the bench."""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.support.app import FAST_HASH
from tests.support.processes import Service, clean_env, free_port

STARTUP_SECONDS = 45
COVER_SERVERS = "TURNOUT_TEST_COVER_SERVERS"  # "1": coverage measures servers and workers too
STOP_SECONDS = 15
PRODUCTION_APP = "wsgi:app"
CONTROL_APP = "tests.support.control_wsgi:app"  # the naive registration (tests/support/control.py)
# What counts as trouble in gunicorn's combined log: its own errors, a turnout JSON
# line at error level, a traceback, or an access-log line with a 5xx status.
_PROBLEM = re.compile(r"\[(ERROR|CRITICAL)\]|WORKER TIMEOUT|Traceback|"
                      r'"level": "(error|critical)"|" 5\d\d ')


def server_env(database_url: str, redis_url: str, instance_dir: Path,
               extra_env: dict[str, str] | None = None, *, testing: bool = True
               ) -> dict[str, str]:
    """The environment of a server or worker process of ours on these databases.

    `testing` adds what the suite's servers share (TESTING, a fixed secret key,
    the cheap password hash); the bench runs production settings. Coverage
    measures these processes only with TURNOUT_TEST_COVER_SERVERS=1.
    """
    env = clean_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        RATELIMIT_ENABLED="0",  # many sign-ins from one address
        TURNOUT_INSTANCE=str(instance_dir),
        PYTHONUNBUFFERED="1",
        # gunicorn >= 25.1 opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl (else
        # ~/.gunicorn/): one per server here, so parallel servers do not take each other's.
        XDG_RUNTIME_DIR=str(instance_dir),
    )
    if testing:
        env.update({"SECRET_KEY": "live-test-secret-key-not-for-production",
                    "TURNOUT_TESTING": "1", "PASSWORD_HASH_METHOD": FAST_HASH})
    if os.environ.get(COVER_SERVERS) != "1":
        # coverage's subprocess patch starts measuring in any Python child that
        # inherits this variable; traced, servers and workers answer too late for
        # the tests' time budgets on a loaded 2-core machine.
        env.pop("COVERAGE_PROCESS_CONFIG", None)
    env.update(extra_env or {})
    return env


class LiveServer(Service):
    """One gunicorn process tree, its base URL and its log (stdout and stderr together)."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path, *,
                 app: str = PRODUCTION_APP, conf_file: str = "deploy/gunicorn.conf.py",
                 workers: int | None = None, threads: int | None = None,
                 worker_class: str | None = None, label: str = "live",
                 new_session: bool = False) -> None:
        argv = [sys.executable, "-m", "gunicorn", "-c", conf_file,
                "--bind", f"127.0.0.1:{port}"]
        for flag, value in (("--workers", workers), ("--threads", threads),
                            ("--worker-class", worker_class)):
            if value:
                argv += [flag, str(value)]
        argv.append(app)
        self.port, self.label = port, label
        self.url = f"http://127.0.0.1:{port}"
        # deploy/gunicorn.conf.py: WEB_CONCURRENCY, else 2 per core
        self.workers = workers or int(env.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1)))
        super().__init__(f"gunicorn[{label}]", argv, log_path, env, new_session=new_session)

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
        return self.tail(lines)

    def wait_until_ready(self, deadline: float, warm_per_worker: int = 8) -> None:
        """Until every worker has loaded the app and answers (a first answer is not enough)."""
        while True:
            if not self.alive():
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer in time:\n{self.log_tail()}")
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
        self.warm_up(warm_per_worker)

    def warm_up(self, per_worker: int) -> None:
        """Every worker imports and renders once before anything is measured."""
        with ThreadPoolExecutor(max_workers=self.workers * 4) as pool:
            for status in pool.map(
                    lambda _: requests.get(self.url + "/login", timeout=10).status_code,
                    range(self.workers * per_worker)):
                if status != 200:
                    raise RuntimeError(f"warm-up answered {status}:\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_SECONDS, sig: int = signal.SIGTERM) -> None:
        """SIGTERM to the master (graceful), then SIGKILL whatever of the tree is left."""
        super().stop(timeout, sig)


def start_live_server(database_url: str, redis_url: str, *, extra_env: dict[str, str] | None = None,
                      workdir: Path | None = None, workers: int = 4, threads: int = 8,
                      attempts: int = 3, conf_file: str = "deploy/gunicorn.conf.py",
                      app: str = PRODUCTION_APP) -> LiveServer:
    """Start `gunicorn -c <conf_file> <app>` on a free port and wait for it.

    `app` is the WSGI spec (CONTROL_APP for the control run); `workdir` (a
    pytest tmp dir, kept for the last runs) holds the instance folder and
    gunicorn's log.
    """
    instance_dir = Path(workdir or tempfile.mkdtemp(prefix="turnout-live-"))
    env = server_env(database_url, redis_url, instance_dir, extra_env)
    for attempt in range(1, attempts + 1):
        port = free_port()
        server = LiveServer(env, port, instance_dir / f"gunicorn-{port}.log", app=app,
                            conf_file=conf_file, workers=workers, threads=threads)
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


class LiveServers:
    """One live server at a time, by variant: asking for another stops the current one.

    Three idle servers of 4 workers hold enough pooled connections for a race
    to hit PostgreSQL's max_connections (100 by default), which then answers
    "too many clients" as 500s.
    """

    def __init__(self, database_url: str, redis_url: str, workdir) -> None:
        self.database_url, self.redis_url = database_url, redis_url
        self.workdir = workdir  # workdir() -> a new directory for a server
        self.current: dict[tuple, LiveServer] = {}

    def get(self, app: str = PRODUCTION_APP, **extra_env: str) -> LiveServer:
        key = (app, *sorted(extra_env.items()))
        server = self.current.get(key)
        if server is not None and server.alive():
            return server
        self.stop()
        self.current[key] = start_live_server(self.database_url, self.redis_url, app=app,
                                              extra_env=extra_env, workdir=self.workdir())
        return self.current[key]

    def stop(self) -> None:
        for server in self.current.values():
            server.stop()
        self.current.clear()
