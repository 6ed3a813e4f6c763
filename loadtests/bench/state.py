"""One bench run: its folder and log, the services it started, its results; stops everything."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import time

from loadtests import invariants, people
from loadtests.measure import standard_groups
from loadtests.stack import ROOT, Gunicorn, Nginx, Service


class Bench:
    """What every step reads and adds to; `teardown()` stops and releases what they started."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_dir = args.out / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.run_dir / "bench.log"
        self.t0 = time.monotonic()
        self.services: list[Service] = []
        self.resources = contextlib.ExitStack()  # the database and the Redis index
        self.app = self.engine = self.config = None
        self.web: Gunicorn | None = None
        self.nginx: Nginx | None = None
        self.worker: Service | None = None
        self.results: dict = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "args": {k: str(v) for k, v in vars(args).items()},
                              "machine": machine_info(), "scenarios": {}, "ratios": [],
                              "matrix": [], "checks": [], "notes": []}
        # events of one wrk run -> (requests answered, connections) of each run on them
        self.wrk_attempts: dict[tuple[int, ...], list[tuple[int, int]]] = {}

    # --- output -----------------------------------------------------------------

    def say(self, message: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {message}"
        print(line, flush=True)
        with self.log_path.open("a") as f:
            f.write(line + "\n")

    def phase(self, title: str) -> None:
        self.say(f"== {title}")

    def add_checks(self, scope: str, checks: list[invariants.Check]) -> None:
        for check in checks:
            self.results["checks"].append({"scope": scope, "name": check.name, "ok": check.ok,
                                           "detail": check.detail})
            if not check.ok:
                self.say(f"   FAIL {scope}: {check}")
        passed = sum(c.ok for c in checks)
        self.say(f"   {scope}: {passed}/{len(checks)} invariant checks passed")

    # --- SQL -----------------------------------------------------------------------

    def settle_activity(self) -> None:
        """Rejections the servers have not batched into SQL yet (webapp/reports/journal.py)."""
        from webapp.reports.journal import settle

        with self.app.app_context():
            written = settle()
        if written:
            self.say(f"   {written} rejected attempts were still on their way to activity_log")

    def new_event(self, title: str) -> int:
        return people.create_event(self.engine, self.organizer, title, 100_000)

    # --- services ------------------------------------------------------------------

    def start_gunicorn(self, label: str, **kwargs) -> Gunicorn:
        server = Gunicorn(self.config, self.web_port, label=label, **kwargs)
        self.services.append(server)
        server.wait_ready()
        self.say(f"gunicorn [{label}] {server.url}, {server.workers} workers, "
                 f"log {server.log_path.name}")
        return server

    def stop_service(self, service: Service) -> None:
        service.stop()
        with contextlib.suppress(ValueError):
            self.services.remove(service)

    def stop_web(self) -> None:
        for service in [s for s in self.services if isinstance(s, Gunicorn)]:
            self.stop_service(service)

    def cpu_groups(self) -> dict:
        def family(kind):
            return lambda: [p for s in self.services if isinstance(s, kind) for p in s.processes()]
        return standard_groups({"gunicorn": family(Gunicorn), "nginx": family(Nginx),
                                "worker": lambda: self.worker.processes()})

    def teardown(self) -> None:
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception as exc:  # keep stopping the others
                self.say(f"could not stop {service.name}: {exc}")
        self.services.clear()
        if self.engine is not None:
            self.engine.dispose()
        if self.app is not None:
            from webapp.extensions import db

            with self.app.app_context():
                db.engine.dispose()
        try:
            self.resources.close()
        except Exception as exc:
            self.say(f"could not release the database / Redis index: {exc}")
        self.say("everything the bench started is stopped")


def machine_info() -> dict:
    import psutil

    def version(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None

    rev = version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                           capture_output=True, text=True).stdout.strip() != ""
    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "git": f"{rev}{' (with uncommitted changes)' if dirty else ''}",
            "postgres": version(["psql", "--version"]),
            "redis": version(["redis-server", "--version"]),
            "nginx": version(["nginx", "-v"]), "wrk": version(["wrk", "--version"]),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
