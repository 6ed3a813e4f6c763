"""`python -m workers` is a supervisor: its children die with it (kill -9 leaves no orphan,
not even a forked work-horse) and stop with it (SIGTERM: exit 0, nothing left)."""

from __future__ import annotations

import os
import signal

import pytest

from tests.support.outages import process_tree, still_running, worker_child
from tests.support.processes import wait_until
from webapp.registrations import services as registrations

pytestmark = pytest.mark.slow


def test_kill_9_of_the_supervisor_leaves_no_process_it_started(app_ctx, smtp, start_worker,
                                                               make_user, make_event):
    """Before: the upkeep process, RQ's scheduler and multiprocessing's resource tracker
    kept running after the worker was killed."""
    smtp.hold = True  # a job in progress: with WORKER_FORK=1 a work-horse is running
    worker = start_worker(WORKER_FORK="1")
    registrations.register(make_event(capacity=3).id, make_user().id)
    assert smtp.holding.wait(20), worker.tail()
    rq = worker_child(worker.pid, "rq")
    assert rq is not None and worker_child(worker.pid, "upkeep") is not None
    assert rq.children(), "the work-horse"
    tree = process_tree(worker.pid)

    os.kill(worker.pid, signal.SIGKILL)  # the supervisor alone, not its process group

    wait_until(lambda: not still_running(tree), seconds=5,
               what=f"every process of {[(p.pid, p.name()) for p in tree]} gone")


def test_sigterm_stops_the_children_and_exits_0(app_ctx, smtp, start_worker):
    worker = start_worker()
    wait_until(lambda: worker_child(worker.pid, "rq") and worker_child(worker.pid, "upkeep"),
               what="both children")
    tree = process_tree(worker.pid)

    worker.proc.send_signal(signal.SIGTERM)

    assert worker.proc.wait(timeout=20) == 0, worker.tail()
    assert not still_running(tree)
    assert "worker child exited" not in worker.log()
