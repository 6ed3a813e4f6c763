"""Periodic upkeep, the second child of `python -m workers`: keep Redis honest, hand on
lost email jobs, start due retries.

- every second: move RQ jobs whose retry is due from the scheduled registry to
  their queue (what RQ's scheduler process would do; one upkeep loop at a time
  holds RQ's scheduler lock, so several workers never double it);
- every RECONCILE_INTERVAL_SECONDS: reconcile seat counters with SQL;
- every OUTBOX_SWEEP_INTERVAL_SECONDS: enqueue outbox rows whose job was lost
  (Redis down at commit time, a web process killed before the enqueue, a
  worker killed mid-send);
- every ACTIVITY_DRAIN_INTERVAL_SECONDS: write the rejected attempts a dead web
  process left in its Redis journal to the activity log;
- every hour: forget Idempotency-Keys older than a day.

A task that fails (Redis, PostgreSQL down) is tried again on its next round;
the loop itself never stops for it, and logs a failing task once per outage.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

log = logging.getLogger("turnout.maintenance")

# RQ's own scheduler interval: a retry due at t is in the queue by t + 1 s.
SCHEDULE_INTERVAL_SECONDS = 1
PURGE_INTERVAL_SECONDS = 3600


def run_forever() -> int:
    """Run each task on its own interval until SIGTERM/SIGINT."""
    from webapp import create_app

    app = create_app()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    failing: set[str] = set()
    tasks = [
        (enqueue_due_retries, SCHEDULE_INTERVAL_SECONDS),
        (reconcile_seats, app.config["RECONCILE_INTERVAL_SECONDS"]),
        (sweep_outbox, app.config["OUTBOX_SWEEP_INTERVAL_SECONDS"]),
        (drain_activity, app.config["ACTIVITY_DRAIN_INTERVAL_SECONDS"]),
        (forget_old_keys, PURGE_INTERVAL_SECONDS),
    ]
    next_run = [0.0] * len(tasks)
    while not stop.is_set():
        now = time.monotonic()
        for i, (task, interval) in enumerate(tasks):
            if now >= next_run[i]:
                run_once(app, task, failing)
                next_run[i] = time.monotonic() + interval
        stop.wait(max(0.1, min(next_run) - time.monotonic()))
    return 0


def run_once(app, task=None, failing: set[str] | None = None) -> None:
    """One round of `task` (default: every task), never raising: the next round tries again.

    `failing` (the loop's memory of tasks that failed last time) makes a task
    that keeps failing log once, and once more when it works again.
    """
    for one in [task] if task else [reconcile_seats, sweep_outbox, drain_activity,
                                    forget_old_keys]:
        name = one.__name__
        with app.app_context():
            try:
                one()
            except Exception:
                if failing is None or name not in failing:
                    log.exception("upkeep task failed", extra={"task": name})
                if failing is not None:
                    failing.add(name)
                continue
        if failing is not None and name in failing:
            failing.discard(name)
            log.info("upkeep task works again", extra={"task": name})


_scheduler = None


def enqueue_due_retries() -> None:
    """Put the email jobs whose RQ retry is due on their queue, if this loop holds RQ's
    scheduler lock (held for 61 s, refreshed each round)."""
    global _scheduler
    from rq.scheduler import RQScheduler
    from rq.serializers import JSONSerializer

    from webapp.extensions import redis_store
    from workers import QUEUES

    if _scheduler is None:
        # Named after the supervisor, so an upkeep loop it restarts keeps the lock.
        _scheduler = RQScheduler(list(QUEUES), connection=redis_store.rq_client,
                                 serializer=JSONSerializer,
                                 name=f"turnout-upkeep@{socket.gethostname()}:{os.getppid()}")
    if _scheduler.acquire_locks():
        _scheduler.enqueue_scheduled_jobs()


def reconcile_seats() -> None:
    from webapp.registrations.reconcile import reconcile_upcoming

    reconcile_upcoming()


def drain_activity() -> None:
    from flask import current_app

    from webapp.reports.journal import write_streams

    write_streams(older_than_ms=current_app.config["ACTIVITY_ORPHAN_MS"])


def sweep_outbox() -> None:
    from webapp.mail.services import sweep

    sweep()


def forget_old_keys() -> None:
    from webapp.registrations.idempotency import purge

    forgotten = purge()
    if forgotten:
        log.info("old Idempotency-Keys forgotten", extra={"count": forgotten})
