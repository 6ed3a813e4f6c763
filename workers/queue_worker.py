"""The RQ worker child of `python -m workers`: runs the email jobs and outlives Redis.

RQ's `Worker.work()` rides out a Redis outage while it waits for a job, but
not one during a job: the heartbeat after the job raises, work() logs "found
an unhandled exception, quitting" and returns. Here that only ends one RQ
worker: the loop waits for Redis (one line per outage, backoff capped at
30 s) and starts a new one. It ends only on SIGTERM/SIGINT. A PostgreSQL or
SMTP outage never reaches this loop: the job fails, RQ retries it, and the
outbox's sweep (workers/maintenance.py) hands on any row whose job got lost.

No RQ scheduler process here (`with_scheduler=True` would fork one that
outlives a killed parent): the upkeep loop moves due retries to the queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time

import redis
from rq import Queue, SimpleWorker, Worker
from rq.serializers import JSONSerializer

from workers import QUEUES
from workers.children import Backoff
from workers.lifeline import die_with_parent

log = logging.getLogger("turnout.worker")

# A worker that ran this long was not in a crash loop: the next wait starts at 1 s again.
_HEALTHY_AFTER_SECONDS = 60


class _Stop:
    requested = False


def _request_stop(*_args) -> None:
    _Stop.requested = True


class _StopOnRequest:
    """RQ's warm stop, also when Redis is down at that moment, and remembered by the loop."""

    def request_stop(self, signum, frame):
        _Stop.requested = True
        try:
            super().request_stop(signum, frame)
        except redis.RedisError:  # could not note the stop in Redis: stop after the job anyway
            self._stop_requested = True

    def _install_signal_handlers(self):
        super()._install_signal_handlers()
        if _Stop.requested:  # the signal came while work() started: its loop stops at once
            self._stop_requested = True


class InProcessWorker(_StopOnRequest, SimpleWorker):
    """Jobs in this process (the default): warm template, SQL and connection caches."""


class ForkingWorker(_StopOnRequest, Worker):
    """A work-horse per job (WORKER_FORK=1), which dies with this process if it is killed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._worker_pid = os.getpid()

    def main_work_horse(self, job, queue):
        die_with_parent(self._worker_pid)
        super().main_work_horse(job, queue)


def run() -> int:
    """Start RQ workers one after another until asked to stop."""
    from webapp import create_app

    _handle_stop_signals()
    app = create_app()  # built once; every job runs inside its context
    # RQ wants bytes, not str; it sets the read timeout itself (longer than its BLPOP).
    connection = redis.Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=5)
    # Jobs run in this process by default: a forked work-horse per job starts with cold
    # template, SQL-compilation and connection caches, which made an email cost ~250 ms of
    # set-up here (loadtests/mail_latency.py). WORKER_FORK=1 isolates each job in a fork.
    worker_class = ForkingWorker if app.config["WORKER_FORK"] else InProcessWorker
    backoff = Backoff(1.0, 30.0)
    with app.app_context():
        while _wait_for_redis(connection, backoff):
            queues = [Queue(name, connection=connection, serializer=JSONSerializer)
                      for name in QUEUES]
            worker = worker_class(queues, connection=connection, serializer=JSONSerializer)
            worker.max_connection_wait_time = backoff.cap
            log.info("worker started", extra={"queues": list(QUEUES), "rq_worker": worker.name})
            started = time.monotonic()
            try:
                worker.work(with_scheduler=False)
            except Exception as exc:  # Redis gone in the middle of RQ's own bookkeeping
                log.warning("RQ worker failed", extra={"rq_worker": worker.name,
                                                       "error": f"{type(exc).__name__}: {exc}"})
            finally:
                _discard(worker)
                _handle_stop_signals()  # RQ installed its own; they belong to the old worker
            if _Stop.requested:
                break
            log.warning("RQ worker quit without being asked; starting a new one",
                        extra={"rq_worker": worker.name})
            if time.monotonic() - started >= _HEALTHY_AFTER_SECONDS:
                backoff.reset()
            _nap(backoff.next())
    log.info("worker stopped")
    return 0


def _handle_stop_signals() -> None:
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)


def _wait_for_redis(connection: redis.Redis, backoff: Backoff) -> bool:
    """True once Redis answers, False when asked to stop first. One line when the wait
    starts and one when it ends, however long it lasts."""
    down_since = None
    while not _Stop.requested:
        try:
            connection.ping()
        except redis.RedisError as exc:
            if down_since is None:
                down_since = time.monotonic()
                log.warning("Redis unreachable; the worker waits for it",
                            extra={"error": f"{type(exc).__name__}: {exc}"})
            _nap(backoff.next())
            continue
        if down_since is not None:
            log.info("Redis answers again", extra={
                "down_for_s": round(time.monotonic() - down_since, 1)})
            backoff.reset()
        return True
    return False


def _nap(seconds: float) -> None:
    """Sleep, waking early when a stop is requested."""
    deadline = time.monotonic() + seconds
    while not _Stop.requested and time.monotonic() < deadline:
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def _discard(worker) -> None:
    """Stop what a worker that died with Redis left running: its pub/sub thread."""
    thread = getattr(worker, "pubsub_thread", None)
    if thread is not None:
        with contextlib.suppress(Exception):
            thread.stop()
            thread.join(timeout=1)
    pubsub = getattr(worker, "pubsub", None)
    if pubsub is not None:
        with contextlib.suppress(Exception):
            pubsub.close()
