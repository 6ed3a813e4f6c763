"""`python -m workers`: the RQ worker (with its scheduler for retries) plus periodic upkeep."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from pathlib import Path

import redis
from rq import Queue, SimpleWorker, Worker
from rq.serializers import JSONSerializer

from webapp import create_app
from workers import QUEUES, maintenance

log = logging.getLogger("turnout.worker")


def yield_cpu_to_web() -> bool:
    """Run this process, its threads and children under SCHED_IDLE (Linux).

    Nothing the worker does is awaited by a person: an email that leaves a
    second later is as good, and it is in the outbox either way. A request is
    awaited. On the 2-core machine, 100 confirmation emails sent during a rush
    of 1,000 clicks took ~1 CPU-second from the web processes and raised the
    rush's p99 by ~0.7 s; with the worker at idle priority it only uses the
    CPU time the web leaves (loadtests/README.md). Under a load that never
    leaves any, emails wait for it to pass: they are delayed, never lost.
    """
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError as exc:
        log.warning("could not lower the worker's CPU priority", extra={"error": str(exc)})
        return False
    _lower_autogroup()
    return True


def _lower_autogroup() -> bool:
    """Give this session's CPU group the lowest weight, when the worker leads its own session.

    SCHED_IDLE only ranks threads inside one CPU group. With the kernel's
    autogroups (on in Debian's kernels) every session is a group of its own,
    with an equal share against the others, so a worker started in its own
    session (loadtests/bench.py, a shell's `setsid`) still took a third of a
    core from gunicorn during a rush (loadtests/README.md). Under systemd with
    the cpu controller the cgroup decides instead, and
    deploy/systemd/turnout-worker.service sets CPUWeight=idle. A worker that
    shares its session (`make run`) is left alone: the group is not its own.
    """
    autogroup = Path("/proc/self/autogroup")
    if os.getsid(0) != os.getpid() or not autogroup.exists():
        return False
    try:
        autogroup.write_text("19")
    except OSError as exc:
        log.warning("could not lower the worker's CPU group", extra={"error": str(exc)})
        return False
    return True


def main() -> int:
    app = create_app()  # built once; every job runs inside its context
    if app.config["WORKER_IDLE_PRIORITY"] and yield_cpu_to_web():
        log.info("worker runs at idle CPU priority (WORKER_IDLE_PRIORITY=0 to turn off)")
    # Upkeep runs in its own process: the RQ worker forks a work-horse per job,
    # and forking a process that has other threads is not safe.
    upkeep = multiprocessing.get_context("spawn").Process(
        target=maintenance.run_forever, name="turnout-maintenance", daemon=True)
    upkeep.start()
    connection = redis.Redis.from_url(app.config["REDIS_URL"])  # RQ wants bytes, not str
    queues = [Queue(name, connection=connection, serializer=JSONSerializer) for name in QUEUES]
    try:
        with app.app_context():
            # Jobs run in this process by default: a forked work-horse per job starts
            # with cold template, SQL-compilation and connection caches, which made an
            # email cost ~250 ms of set-up here (loadtests/mail_latency.py).
            # WORKER_FORK=1 isolates each job in a fork instead.
            worker_class = Worker if app.config["WORKER_FORK"] else SimpleWorker
            worker = worker_class(queues, connection=connection, serializer=JSONSerializer)
            log.info("worker started", extra={"queues": list(QUEUES)})
            worker.work(with_scheduler=True)
    finally:
        upkeep.terminate()
        upkeep.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
