"""The campaign's stack: private PostgreSQL and Redis, the recording SMTP sink, gunicorn
and the supervised worker; people and events seeded in bulk. Everything it starts it stops."""

from __future__ import annotations

import contextlib
import random
import signal
import time
from pathlib import Path

import psutil
from sqlalchemy import create_engine

from loadtests import people
from loadtests.chaos.client import Person, sign_in
from loadtests.chaos.servers import (
    KillableRedis,
    PrivatePostgres,
    RecordingSink,
    SinkServer,
    Supervisor,
)
from loadtests.common import email_of
from loadtests.stack import Gunicorn, StackConfig
from tests.support.databases import upgrade_schema
from tests.support.processes import free_port

# Production timings, except that the app's own reconciler runs as deployed (every 60 s):
# the campaign measures what the system repairs by itself.
APP_ENV = {"RECONCILE_INTERVAL_SECONDS": "60", "RATELIMIT_ENABLED": "0"}
WEB_RESTART_SECONDS = 2.0  # systemd's RestartSec in deploy/systemd/turnout-web.service


class Rig:
    def __init__(self, run_dir: Path, *, web_workers: int, web_threads: int,
                 say=print) -> None:
        self.run_dir, self.say = run_dir, say
        self.web_workers, self.web_threads = web_workers, web_threads
        self.postgres: PrivatePostgres | None = None
        self.redis: KillableRedis | None = None
        self.sink_server: SinkServer | None = None
        self.web: Gunicorn | None = None
        self.supervisor: Supervisor | None = None
        self.engine = None
        self.web_starts = 0
        self.organizer = 0

    # --- up and down ---------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        self.postgres = PrivatePostgres(free_port(), self.run_dir / "postgres.log")
        self.redis = KillableRedis(free_port())
        upgrade_schema(self.postgres.url)
        self.engine = create_engine(self.postgres.url, pool_pre_ping=True)
        self.sink = RecordingSink(record_path=self.run_dir / "smtp-received.jsonl")
        self.sink_server = SinkServer(self.sink, free_port())
        self.config = StackConfig(self.run_dir, self.postgres.url, f"{self.redis.url}/0",
                                  mail_port=self.sink_server.port)
        self.env = self.config.env(**APP_ENV)
        self.supervisor = Supervisor(self.env, self.run_dir / "worker.log")
        self.web_port = free_port()
        self.start_web()
        self.say(f"stack up in {time.monotonic() - started:.1f} s: PostgreSQL :"
                 f"{self.postgres.port}, Redis :{self.redis.port}, SMTP sink :"
                 f"{self.sink_server.port}, gunicorn {self.web.url} ({self.web_workers} x "
                 f"{self.web_threads}), worker pid {self.supervisor.worker.pid}")

    def start_web(self) -> None:
        self.web_starts += 1
        self.web = Gunicorn(self.config, self.web_port, label=f"web{self.web_starts}",
                            workers=self.web_workers, threads=self.web_threads,
                            extra_env=APP_ENV)
        self.web.wait_ready(timeout=90)

    def close(self) -> None:
        for step in (lambda: self.web and self.web.stop(),
                     lambda: self.supervisor and self.supervisor.close(),
                     lambda: self.sink_server and self.sink_server.close(),
                     lambda: self.engine and self.engine.dispose(),
                     lambda: self.redis and self.redis.stop(),
                     lambda: self.postgres and self.postgres.close()):
            try:
                step()
            except Exception as exc:  # keep stopping the others
                self.say(f"while stopping: {type(exc).__name__}: {exc}")

    # --- data --------------------------------------------------------------------------

    def seed_people(self, count: int) -> list[Person]:
        """`count` people inserted in bulk (one cheap precomputed hash) and signed in."""
        people.create_people(self.engine, 1, count)
        self.organizer = people.create_organizer(self.engine)
        ids = people.ids_by_email(self.engine, 1, count)
        return sign_in(self.web.url, [(i, ids[email_of(i)], email_of(i))
                                      for i in range(1, count + 1)])

    def create_event(self, title: str, capacity: int, *, waitlist: bool = False,
                     waitlist_capacity: int | None = None) -> int:
        return people.create_event(self.engine, self.organizer, title, capacity,
                                   waitlist=waitlist, waitlist_capacity=waitlist_capacity)

    # --- what faults act on -------------------------------------------------------------

    def web_workers_pids(self) -> list[int]:
        try:
            return [p.pid for p in psutil.Process(self.web.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def kill_web_worker(self, rng: random.Random) -> int | None:
        pids = self.web_workers_pids()
        if not pids:
            return None
        victim = rng.choice(pids)
        with contextlib.suppress(ProcessLookupError):
            psutil.Process(victim).send_signal(signal.SIGKILL)
        return victim

    def kill_web(self) -> None:
        """SIGKILL to the master and every worker at once, as an OOM kill of the unit would."""
        for process in self.web.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self.web.stop(timeout=5)
