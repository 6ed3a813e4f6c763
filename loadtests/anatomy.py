"""Where a rush's time goes, request by request: `python -m loadtests.anatomy`.

    python -m loadtests.anatomy [--rushes 3] [--workers 4 --threads 4] [--worker-class gthread]

Brings up the bench's stack (gunicorn directly, no nginx) with
loadtests/gunicorn_trace.conf.py, which logs when each request's connection
was accepted, taken up by a pool thread and answered, and runs the htmx rush
(1,000 people, 100 seats) a few times. For the clicks of each rush (release to
last answer) it prints:

* how many requests each gunicorn worker served, and when the last
  connection was accepted;
* how long requests waited inside a worker for a pool thread, and how long a
  thread took to answer one;
* the CPU of each process group, and how long gunicorn's threads were on a
  CPU against how long they were runnable but waiting for one (the kernel's
  /proc/<pid>/task/<tid>/schedstat): a server waiting for CPUs is not waiting
  on Redis or SQL.

The SQL invariants are checked after every rush, as in `make bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

from loadtests.bench import scenarios, stackup
from loadtests.bench.args import parse_args
from loadtests.bench.scenarios import pct
from loadtests.bench.seed import prepare_data
from loadtests.bench.state import Bench


def _schedstat(pids: list[int]) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable and waiting for one), summed over every thread."""
    on_cpu = waiting = 0
    for pid in pids:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    ran, waited, _slices = f.read().split()
                on_cpu, waiting = on_cpu + int(ran), waiting + int(waited)
        except OSError:  # a thread or worker that ended
            continue
    return on_cpu / 1e9, waiting / 1e9


class SchedSampler(threading.Thread):
    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.samples, self.done = pids, [], threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.samples.append((time.time(), *_schedstat(self.pids)))

    def between(self, start: float, end: float) -> tuple[float, float]:
        before = [s for s in self.samples if s[0] <= start][-1]
        after = next(s for s in self.samples if s[0] >= end)
        return round(after[1] - before[1], 2), round(after[2] - before[2], 2)


def requests_between(trace_dir: Path, start: float, end: float) -> list[tuple[int, ...]]:
    rows = []
    for path in trace_dir.glob("requests.*"):
        for line in path.read_text().splitlines():
            pid, accepted, started, finished = line.split()
            if start - 0.5 <= float(accepted) <= end:
                rows.append((int(pid), float(accepted) - start, float(started) - start,
                             float(finished) - start))
    return rows


def anatomy(bench: Bench, trace_dir: Path, index: int) -> dict:
    sampler = SchedSampler([p.pid for p in bench.web.processes()[1:]])
    sampler.start()
    stats = scenarios.rush(bench, "htmx", "direct", setting=f"anatomy-{index}")
    sampler.done.set()
    sampler.join()
    data = json.loads((bench.run_dir / stats["answers_file"]).read_text())
    released = data["released_at"]
    last = released + stats["wall_s"]
    rows = requests_between(trace_dir, released, last)
    per_worker: dict[int, int] = {}
    for row in rows:
        per_worker[row[0]] = per_worker.get(row[0], 0) + 1
    queued = sorted(r[2] - r[1] for r in rows)
    answering = sorted(r[3] - r[2] for r in rows)
    on_cpu, waiting = sampler.between(released, last)
    return {
        "p50_ms": stats["latency_ms"]["p50"], "p99_ms": stats["latency_ms"]["p99"],
        "last_answer_s": stats["wall_s"], "tally": stats["tally"],
        "requests_per_worker": sorted(per_worker.values(), reverse=True),
        "last_accept_s": round(max(r[1] for r in rows), 3) if rows else None,
        "queued_in_worker_ms": {"p50": round(1000 * pct(queued, 50), 1),
                                "p99": round(1000 * pct(queued, 99), 1)},
        "thread_answer_ms": {"p50": round(1000 * pct(answering, 50), 1),
                             "p99": round(1000 * pct(answering, 99), 1)},
        "click_cpu": stats["click_cpu"],
        "gunicorn_threads_s": {"on_cpu": on_cpu, "waiting_for_cpu": waiting},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.anatomy",
                                description=__doc__.split("\n")[0])
    p.add_argument("--rushes", type=int, default=3)
    p.add_argument("--workers", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--worker-class")
    args = p.parse_args(argv)
    bench = Bench(parse_args(["--no-nginx", "--no-api"]))
    trace_dir = bench.run_dir / "trace"
    trace_dir.mkdir()
    results = []
    try:
        stackup.preflight(bench)
        stackup.prepare_resources(bench)
        prepare_data(bench)
        stackup.start_stack(bench)
        bench.stop_web()
        bench.web = bench.start_gunicorn(
            "traced", workers=args.workers, threads=args.threads, worker_class=args.worker_class,
            conf_file="loadtests/gunicorn_trace.conf.py", extra_env={"TRACE_DIR": str(trace_dir)})
        for index in range(args.rushes):
            result = anatomy(bench, trace_dir, index)
            results.append(result)
            bench.say("anatomy " + json.dumps(result))
        failed = [c for c in bench.results["checks"] if not c["ok"]]
        bench.say(f"{len(bench.results['checks']) - len(failed)} SQL checks passed, "
                  f"{len(failed)} failed")
        (bench.run_dir / "anatomy.json").write_text(json.dumps(results, indent=2))
        return 1 if failed else 0
    finally:
        bench.teardown()


if __name__ == "__main__":
    raise SystemExit(main())
