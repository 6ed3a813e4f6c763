"""Measuring on a shared 2-core machine: CPU per process group, idle gating, wrk runs."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = ROOT / "loadtests" / "wrk" / "turnout.lua"


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def _named(names: tuple[str, ...]) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name"]):
        if (process.info["name"] or "").startswith(names):
            found.append(process)
    return found


class CpuWindow:
    """CPU used by each group of processes between start() and stop(), as % of one core.

    A sampler thread notes every process's CPU time five times a second, so a
    process that exits during the window (a recycled gunicorn worker, a
    PostgreSQL backend) still counts up to its last sample. The samples are
    kept, so between() can tell what a part of the window cost (a rush's clicks
    without its sign-ins).
    """

    def __init__(self, groups: dict[str, Callable[[], list[psutil.Process]]]) -> None:
        self.groups = groups
        self.seconds = 0.0
        self.percent: dict[str, float] = {}
        self._first: dict[str, dict[int, float]] = {}
        self._last: dict[str, dict[int, float]] = {}
        # (wall time, machine busy CPU-seconds, CPU-seconds used by each group so far)
        self.timeline: list[tuple[float, float, dict[str, float]]] = []
        self._stop = threading.Event()

    def _sample(self, initial: bool = False) -> None:
        for name, find in self.groups.items():
            first = self._first.setdefault(name, {})
            last = self._last.setdefault(name, {})
            for process in find():
                try:
                    times = process.cpu_times()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                used = times.user + times.system
                # A process born in the window counts from zero.
                first.setdefault(process.pid, used if initial else 0.0)
                last[process.pid] = used
        self.timeline.append((time.time(), _machine_busy(), {
            name: sum(self._last[name][pid] - self._first[name].get(pid, 0.0)
                      for pid in self._last[name]) for name in self.groups}))

    def between(self, start: float, end: float) -> dict[str, float] | None:
        """CPU between two wall-clock times, as % of one core (None: too short to tell).

        Spans the samples nearest outside [start, end]; "other" is what the
        machine used beyond the groups (the load generator, anything else)."""
        before = [s for s in self.timeline if s[0] <= start]
        after = [s for s in self.timeline if s[0] >= end]
        if not before or not after or after[0][0] - before[-1][0] <= 0:
            return None
        (t0, busy0, used0), (t1, busy1, used1) = before[-1], after[0]
        seconds = t1 - t0
        result = {name: round(100 * (used1[name] - used0.get(name, 0.0)) / seconds, 1)
                  for name in used1}
        result["machine"] = round(100 * (busy1 - busy0) / seconds, 1)
        result["other"] = round(max(result["machine"] - sum(
            v for k, v in result.items() if k != "machine"), 0.0), 1)
        result["seconds"] = round(seconds, 2)
        return result

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def start(self) -> None:
        self._children = _children_cpu()
        self._machine_before = psutil.cpu_times()
        self._sample(initial=True)
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.seconds = time.monotonic() - self._t0
        busy = _machine_busy() - _machine_busy(self._machine_before)
        for name in self.groups:
            used = sum(self._last[name][pid] - self._first[name].get(pid, 0.0)
                       for pid in self._last[name])
            self.percent[name] = round(100 * max(used, 0.0) / self.seconds, 1)
        # The load generator (wrk, Locust) is our child: its CPU is known once it is reaped.
        self.percent["load"] = round(100 * (_children_cpu() - self._children) / self.seconds, 1)
        self.percent["machine"] = round(100 * busy / self.seconds, 1)
        ours = sum(v for k, v in self.percent.items() if k != "machine")
        self.percent["foreign"] = round(max(self.percent["machine"] - ours, 0.0), 1)
        return self.percent


def _machine_busy(times=None) -> float:
    """CPU-seconds the whole machine has spent busy since boot (all cores)."""
    times = times or psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def standard_groups(services: dict[str, Callable[[], list[psutil.Process]]]) -> dict:
    groups = dict(services)
    groups.setdefault("postgres", lambda: _named(("postgres",)))
    groups.setdefault("redis", lambda: _named(("redis-server",)))
    return groups


def wait_for_quiet(max_wait: float = 20.0, busy_below: float = 20.0, hold: float = 2.0,
                   say: Callable[[str], None] = print) -> float:
    """Wait (up to max_wait) until the machine has been quiet for `hold` seconds.

    Returns how busy it was (% of one core) in the last sample: other people's
    test runs share these 2 cores, and a measurement next to them says little.
    """
    deadline = time.monotonic() + max_wait
    quiet_since = None
    last = 100.0
    warned = False
    while time.monotonic() < deadline:
        last = psutil.cpu_percent(interval=0.5) * psutil.cpu_count()
        if last < busy_below:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= hold:
                return last
        else:
            quiet_since = None
            if not warned:
                say(f"      machine busy ({last:.0f}% of a core, not ours); waiting for quiet...")
                warned = True
    say(f"      machine still busy ({last:.0f}% of a core) after {max_wait:.0f} s; measuring")
    return last


@dataclass
class WrkResult:
    label: str
    command: str
    rps: float
    requests: int
    latency_ms: dict[str, float]
    errors: dict[str, int]
    judged: dict
    cpu: dict[str, float]
    attempts: int = 1

    @property
    def failures(self) -> int:
        transport = sum(self.errors.values())
        return transport + int(self.judged.get("bad", 0))

    def as_dict(self) -> dict:
        return {"label": self.label, "command": self.command, "rps": self.rps,
                "requests": self.requests, "latency_ms": self.latency_ms,
                "errors": self.errors, "judged": self.judged, "cpu": self.cpu,
                "attempts": self.attempts, "failures": self.failures}


def run_wrk(label: str, url: str, mode: str, expect: str, *, credentials: Path | None,
            events: list[int], threads: int, connections: int, duration: int,
            cpu_groups: dict, log: Path, say: Callable[[str], None] = print,
            spread: bool = False) -> WrkResult:
    events_arg = ",".join(str(e) for e in events) or "0"
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
            "--timeout", "10s", "-s", str(WRK_SCRIPT), url, "--", mode, expect,
            str(credentials) if credentials else "-", events_arg, str(threads)]
    if spread:
        argv.append("spread")
    command = " ".join(argv)
    window = CpuWindow(cpu_groups)
    window.start()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    ticker = threading.Thread(target=_tick, args=(proc, label, duration, say), daemon=True)
    ticker.start()
    try:
        output, _ = proc.communicate(timeout=duration + 60)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    cpu = window.stop()
    with log.open("a") as f:
        f.write(f"$ {command}\n{output}\n")
    line = next((ln for ln in output.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{output[-2000:]}")
    data = json.loads(line[len("WRK_JSON "):])
    lat = data["latency_us"]
    return WrkResult(label, command, round(data["rps"], 1), data["requests"],
                     {k: round(v / 1000, 2) for k, v in lat.items()}, data["errors"],
                     data["judged"], cpu)


def _tick(proc: subprocess.Popen, label: str, duration: int, say) -> None:
    started = time.monotonic()
    while proc.poll() is None:
        time.sleep(1)
        elapsed = time.monotonic() - started
        if proc.poll() is None and int(elapsed) % 5 == 0:
            say(f"      {label}: {min(elapsed, duration):.0f}/{duration} s")


def now() -> str:
    return time.strftime("%H:%M:%S")


def python() -> str:
    return sys.executable
