"""Child processes that are started again when they die, with backoff, and stopped together.

Used by the worker's supervisor (`python -m workers`: the RQ worker and the
upkeep loop) and by `make run` (webapp/devstack.py: Redis, the mail catcher,
the worker, gunicorn). Every child is tied to its parent with
PR_SET_PDEATHSIG (workers/lifeline.py), so `kill -9` of the parent takes its
children along; only the parent's main thread may start them.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections import deque
from collections.abc import Callable

from workers.lifeline import child_of_this_process


class Backoff:
    """Delays that double from `first` up to `cap`; reset() starts again from `first`."""

    def __init__(self, first: float = 1.0, cap: float = 30.0) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.first


class GaveUp(RuntimeError):
    """A child died too often too quickly: starting it again will not help."""


class Child:
    """One command, started again after it dies: `first` (1 s), 2 s, 4 s ... up to `cap`
    later, and from `first` again once it ran `healthy_after` seconds.
    `give_up=(n, seconds)`: GaveUp when it died n times within that many seconds (None:
    never give up)."""

    def __init__(self, name: str, argv: list[str], *, first: float = 1.0, cap: float = 30.0,
                 healthy_after: float = 30.0, give_up: tuple[int, float] | None = None,
                 **popen) -> None:
        self.name, self.argv, self.popen = name, argv, popen
        self.backoff = Backoff(first, cap)
        self.healthy_after, self.give_up = healthy_after, give_up
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.deaths: deque[float] = deque()

    def start(self) -> subprocess.Popen:
        self.proc = subprocess.Popen(self.argv, preexec_fn=child_of_this_process(), **self.popen)
        self.started_at, self.restart_at = time.monotonic(), None
        return self.proc

    def died(self, now: float) -> float:
        """Record a death: the delay before the restart (GaveUp if it keeps dying at once)."""
        if now - self.started_at >= self.healthy_after:
            self.backoff.reset()
        self.deaths.append(now)
        if self.give_up:
            times, window = self.give_up
            while self.deaths and self.deaths[0] < now - window:
                self.deaths.popleft()
            if len(self.deaths) >= times:
                raise GaveUp(f"{self.name} exited {len(self.deaths)} times within {window:.0f} s "
                             f"(last exit code {self.proc.returncode}); giving up")
        return self.backoff.next()


Report = Callable[[str, Child], None]


class Flock:
    """Children tended together: tend() restarts the dead ones, stop() ends them all."""

    def __init__(self, report: Report) -> None:
        self.children: list[Child] = []
        self.report = report

    def start(self, child: Child) -> subprocess.Popen:
        self.children.append(child)
        return child.start()

    def tend(self) -> None:
        """Start again each child that is due; schedule a restart for each that died."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.start()
                    self.report("restarted", child)
            elif child.proc is not None and child.proc.poll() is not None:
                delay = child.died(now)  # may raise GaveUp
                child.restart_at = now + delay
                self.report("exited", child)

    def stop(self, timeout: float = 15, on_kill: Report | None = None) -> None:
        """SIGTERM to every live child (the last started first), SIGKILL to those still
        running after `timeout` seconds."""
        running = [c.proc for c in reversed(self.children)
                   if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                if on_kill:
                    on_kill("killed", child)
                child.proc.kill()
                child.proc.wait(timeout=10)
