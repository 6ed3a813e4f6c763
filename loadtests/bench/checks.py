"""After the runs: invariants in SQL, Redis against SQL, timelines; results.json and report.md."""

from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import text

from loadtests import invariants
from loadtests.bench.state import Bench
from loadtests.stack import ROOT


def final_checks(bench: Bench) -> None:
    """Every wrk event's invariants and activity rows, the reconcile report, the outbox."""
    bench.phase("invariants after every run (SQL), Redis against SQL")
    bench.settle_activity()
    with bench.engine.connect() as conn:
        for events, runs in sorted(bench.wrk_attempts.items()):
            low = sum(r for r, _ in runs)
            high = low + sum(c for _, c in runs)  # requests still in flight when wrk stopped
            logged = conn.execute(text(
                "SELECT count(*) FROM activity_log WHERE event_id = ANY(:e)"
                " AND action = 'register'"), {"e": list(events)}).scalar()
            checks = [c for event_id in events for c in invariants.event_checks(conn, event_id)]
            checks.append(invariants.Check(
                "one activity row per attempt", low <= logged <= high,
                f"{logged} rows for {low} answered attempts (+ up to {high - low} in flight)"))
            bench.add_checks(f"wrk event(s) {','.join(map(str, events))}", checks)
    bench.results["timelines"] = {
        f"({r['key']}) {r['where']}": timeline(bench, r["event_id"])
        for r in bench.results["ratios"] if r["key"] in ("b", "d")}
    proc = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "seats",
                           "reconcile"], cwd=ROOT, env=bench.config.env(), capture_output=True,
                          text=True, timeout=300)
    (bench.run_dir / "reconcile.txt").write_text(proc.stdout + proc.stderr)
    bench.add_checks("redis", invariants.reconcile_checks(proc.stdout, proc.returncode))
    with bench.engine.connect() as conn:
        if invariants.has_outbox(conn):
            rows = conn.execute(text("SELECT kind, status, count(*) FROM outbox"
                                     " GROUP BY kind, status ORDER BY 1, 2")).all()
            bench.results["outbox"] = [list(r) for r in rows]


def timeline(bench: Bench, event_id: int, bucket: float = 0.5) -> list[tuple[float, float]]:
    """Confirmations per second over the run, as SQL committed them."""
    with bench.engine.connect() as conn:
        stamps = [t.timestamp() for (t,) in conn.execute(text(
            "SELECT occurred_at FROM activity_log WHERE event_id = :e"
            " AND outcome = 'confirmed' ORDER BY occurred_at"), {"e": event_id})]
    if not stamps:
        return []
    counts: dict[int, int] = {}
    for t in stamps:
        counts[int((t - stamps[0]) / bucket)] = counts.get(int((t - stamps[0]) / bucket), 0) + 1
    return [(round(i * bucket, 2), counts.get(i, 0) / bucket)
            for i in range(max(counts) + 1)]


def write_report(bench: Bench) -> None:
    from loadtests.report import write

    (bench.run_dir / "results.json").write_text(json.dumps(bench.results, indent=2))
    write(bench.run_dir, bench.results)
