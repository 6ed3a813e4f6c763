"""`python -m workers`: a supervisor that keeps two children running, the RQ worker and
the upkeep loop, and restarts either when it dies.

The supervisor builds no app, opens no connection and starts no thread: it
has nothing that Redis, PostgreSQL or SMTP could break. Its children are
subprocesses (no multiprocessing resource tracker to orphan) tied to it with
PR_SET_PDEATHSIG, so `kill -9` of the supervisor takes them along;
SIGTERM/SIGINT stops them cleanly (the RQ worker finishes its job) and exits 0.

- `python -m workers rq`: the RQ worker loop (workers/queue_worker.py);
- `python -m workers upkeep`: retries due, reconcile, outbox sweep, activity
  drain (workers/maintenance.py).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

from workers.children import Child, Flock

log = logging.getLogger("turnout.worker")

CHILDREN = {"rq": "RQ worker", "upkeep": "upkeep"}


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


def supervise() -> int:
    """Start the children, restart any that dies (1 s, 2 s ... 30 s later), stop on a signal."""
    from webapp import logs
    from webapp.config import from_env

    config = from_env()
    logs.configure(config["LOG_LEVEL"])
    # Before the children start: they inherit the policy and share the session's group.
    if config["WORKER_IDLE_PRIORITY"] and yield_cpu_to_web():
        log.info("worker runs at idle CPU priority (WORKER_IDLE_PRIORITY=0 to turn off)")
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _frame: stopping.append(signum))
    flock = Flock(report=_report)
    for role, name in CHILDREN.items():
        flock.start(Child(name, [sys.executable, "-m", "workers", role]))
    log.info("worker supervisor started", extra={
        "children": {c.name: c.proc.pid for c in flock.children}})
    while not stopping:
        flock.tend()
        time.sleep(0.2)
    log.info("worker supervisor stopping", extra={"signal": signal.Signals(stopping[0]).name})
    # The RQ worker finishes the job it runs (at most its timeout) before it exits.
    flock.stop(timeout=config["MAIL_JOB_TIMEOUT_SECONDS"] + 10, on_kill=_report)
    return 0


def _report(what: str, child: Child) -> None:
    extra = {"child": child.name, "pid": child.proc.pid}
    if what == "exited":
        extra.update(exit_code=child.proc.returncode,
                     restart_in_s=round(child.restart_at - time.monotonic(), 1))
        log.warning("worker child exited; restarting it", extra=extra)
    elif what == "restarted":
        log.info("worker child restarted", extra=extra)
    else:
        log.warning("worker child did not stop in time; killed", extra=extra)


def main(argv: list[str]) -> int:
    role = argv[0] if argv else None
    if role == "rq":
        from workers import queue_worker

        return queue_worker.run()
    if role == "upkeep":
        from workers import maintenance

        return maintenance.run_forever()
    if role is None:
        return supervise()
    print(f"usage: python -m workers [{'|'.join(CHILDREN)}]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
