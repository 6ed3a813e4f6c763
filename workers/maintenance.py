"""Periodic upkeep in its own process: keep Redis honest, hand on lost email jobs.

- every RECONCILE_INTERVAL_SECONDS: reconcile seat counters with SQL;
- every OUTBOX_SWEEP_INTERVAL_SECONDS: enqueue outbox rows whose job was lost
  (Redis down at commit time, a web process killed before the enqueue, a
  worker killed mid-send);
- every ACTIVITY_DRAIN_INTERVAL_SECONDS: write the rejected attempts a dead web
  process left in its Redis journal to the activity log.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from webapp import create_app

log = logging.getLogger("turnout.maintenance")


def run_forever() -> None:
    """Run each task on its own interval until SIGTERM/SIGINT."""
    app = create_app()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    tasks = [
        (reconcile_seats, app.config["RECONCILE_INTERVAL_SECONDS"]),
        (sweep_outbox, app.config["OUTBOX_SWEEP_INTERVAL_SECONDS"]),
        (drain_activity, app.config["ACTIVITY_DRAIN_INTERVAL_SECONDS"]),
    ]
    next_run = [0.0] * len(tasks)
    while not stop.is_set():
        now = time.monotonic()
        for i, (task, interval) in enumerate(tasks):
            if now >= next_run[i]:
                run_once(app, task)
                next_run[i] = time.monotonic() + interval
        stop.wait(max(0.1, min(next_run) - time.monotonic()))


def run_once(app, task=None) -> None:
    """One round of `task` (default: every task), never raising: the next round tries again."""
    for one in [task] if task else [reconcile_seats, sweep_outbox, drain_activity]:
        with app.app_context():
            try:
                one()
            except Exception:
                log.exception("upkeep task failed", extra={"task": one.__name__})


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
