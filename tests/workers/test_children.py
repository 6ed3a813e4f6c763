"""Children started again when they die (workers/children.py), shared by `python -m workers`
and `make run`: backoff, giving up on a child that keeps dying at once, stopping them all."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from tests.support.outages import still_running
from tests.support.processes import wait_until
from workers.children import Backoff, Child, Flock, GaveUp


def test_the_backoff_doubles_up_to_its_cap_and_starts_again_after_a_reset():
    backoff = Backoff(1, 30)
    assert [backoff.next() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next() == 1


def test_a_child_that_dies_is_started_again_with_a_growing_delay():
    events: list[tuple[str, int]] = []
    flock = Flock(report=lambda what, child: events.append((what, child.proc.pid)))
    flock.start(Child("quitter", [sys.executable, "-c", "pass"], first=0.1, cap=0.4))
    try:
        wait_until(lambda: sum(what == "restarted" for what, _ in events) >= 3 or flock.tend(),
                   seconds=10, what="three restarts")
    finally:
        flock.stop(timeout=2)
    pids = [pid for what, pid in events if what == "restarted"]
    assert len(set(pids)) == len(pids)  # a new process each time
    assert [what for what, _ in events][:4] == ["exited", "restarted", "exited", "restarted"]


def test_a_child_that_keeps_dying_at_once_is_given_up():
    flock = Flock(report=lambda what, child: None)
    flock.start(Child("broken", [sys.executable, "-c", "raise SystemExit(3)"], first=0.05,
                      cap=0.05, give_up=(5, 30)))
    deadline = time.monotonic() + 15
    with pytest.raises(GaveUp, match=r"broken exited 5 times within 30 s \(last exit code 3\)"):
        while time.monotonic() < deadline:
            flock.tend()
            time.sleep(0.02)


def test_stop_ends_every_child_and_kills_one_that_ignores_sigterm():
    killed: list[str] = []
    flock = Flock(report=lambda what, child: None)
    stubborn = flock.start(Child("stubborn", [sys.executable, "-c",
                                              "import signal, time\n"
                                              "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                              "print('ready', flush=True)\n"
                                              "time.sleep(60)"],
                                 stdout=subprocess.PIPE))
    polite = flock.start(Child("polite", [sys.executable, "-c", "import time; time.sleep(60)"]))
    assert stubborn.stdout.readline().strip() == b"ready"
    processes = [psutil.Process(stubborn.pid), psutil.Process(polite.pid)]
    flock.stop(timeout=1, on_kill=lambda what, child: killed.append(child.name))
    stubborn.stdout.close()
    assert killed == ["stubborn"]
    assert not still_running(processes)
