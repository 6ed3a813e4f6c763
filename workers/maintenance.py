"""Periodic upkeep that keeps Redis honest: reconcile seat counters with SQL."""

from __future__ import annotations

import logging
import signal
import threading

from webapp import create_app

log = logging.getLogger("turnout.maintenance")


def run_forever() -> None:
    """Reconcile every RECONCILE_INTERVAL_SECONDS until SIGTERM/SIGINT (own process)."""
    app = create_app()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    interval = app.config["RECONCILE_INTERVAL_SECONDS"]
    while not stop.is_set():
        run_once(app)
        stop.wait(interval)


def run_once(app) -> None:
    from webapp.registrations.reconcile import reconcile_upcoming

    with app.app_context():
        try:
            reconcile_upcoming()
        except Exception:  # keep the loop alive; the next round tries again
            log.exception("reconcile round failed")
