"""The Locust scenarios: the rushes (htmx, JSON API), browse and register, the rush's emails."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from loadtests import invariants, people
from loadtests.bench.state import Bench
from loadtests.common import DEFAULT_PASSWORD, ENV_PREFIX
from loadtests.measure import CpuWindow
from loadtests.stack import ROOT


def locust(bench: Bench, label: str, locustfile: str, user_class: str, users: int,
           spawn_rate: int, run_time: str, settings: dict[str, str], host: str
           ) -> tuple[int, Path, str]:
    """Run Locust headless; its output in locust-<label>.log, its CSV next to it."""
    prefix = bench.run_dir / f"locust-{label}"
    argv = [sys.executable, "-m", "locust", "-f", locustfile, "--headless",
            "-u", str(users), "-r", str(spawn_rate), "-t", run_time, "--host", host,
            "--csv", str(prefix), "--csv-full-history", "--only-summary",
            "--stop-timeout", "10", "--loglevel", "WARNING", user_class]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.update({ENV_PREFIX + k: v for k, v in settings.items()})
    command = " ".join([*(f"{ENV_PREFIX}{k}={v}" for k, v in settings.items()),
                        "python", *argv[1:]])
    bench.say(f"$ {command}")
    with (bench.run_dir / f"locust-{label}.log").open("w") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            for line in proc.stdout:
                log.write(line)
                if line.startswith("[rush]") or "Error" in line or "Traceback" in line:
                    bench.say("      " + line.rstrip())
            proc.wait(timeout=60)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode, prefix, command


def rush(bench: Bench, kind: str, where: str, setting: str | None = None) -> dict:
    """One rush; with a setting (the matrix), on a new event and reported under it."""
    args = bench.args
    label = f"{kind}_{where}" + (f"_{setting}" if setting else "")
    if setting:
        bench.events[f"rush_{label}"] = people.create_event(
            bench.engine, bench.organizer, f"Rush [{setting}]", args.seats)
    event_id = bench.events[f"rush_{label}"]
    host = bench.nginx.url if where == "nginx" else bench.web.url
    bench.phase(f"rush through {'htmx' if kind == 'htmx' else 'the JSON API'} ({where}): "
                f"{args.people} people, {args.seats} seats, event {event_id}")
    out = bench.run_dir / f"rush-{label}.json"
    window = CpuWindow(bench.cpu_groups())
    window.start()
    code, _prefix, command = locust(
        bench, f"rush-{label}", "loadtests/rush.py",
        "HtmxRushUser" if kind == "htmx" else "ApiRushUser",
        args.people, args.people, "300s",
        {"EVENT_ID": str(event_id), "PEOPLE": str(args.people), "FIRST_USER": "1",
         "PASSWORD": DEFAULT_PASSWORD, "OUT": str(out)}, host)
    cpu = window.stop()
    data = json.loads(out.read_text()) if out.exists() else {"answers": [], "tally": {}}
    bench.settle_activity()
    with bench.engine.connect() as conn:
        checks = invariants.rush_checks(conn, event_id, args.seats, data["answers"], args.people)
    bench.add_checks(f"rush ({kind}, {where}{', ' + setting if setting else ''})", checks)
    stats = {"event_id": event_id, "command": command, "locust_exit": code,
             **rush_stats(data, window, cpu), "answers_file": out.name}
    stats["kind"], stats["where"] = kind, where
    if setting:
        return stats
    bench.results["scenarios"][f"rush_{label}"] = stats
    bench.say(f"rush ({kind}, {where}): {stats['tally']}, p99 {stats['latency_ms']['p99']} ms, "
              f"all answered {stats['wall_s']} s after the release; "
              f"CPU during the clicks (% of one core) {stats['click_cpu']}")
    return stats


def rush_stats(data: dict, window: CpuWindow, cpu: dict[str, float]) -> dict:
    """Latencies, how long the rush took after the release, CPU during the clicks alone."""
    answers = data["answers"]
    seconds = sorted(a["seconds"] for a in answers) or [0]
    released = data.get("released_at") or 0
    last_answer = max((a["started"] + a["seconds"] for a in answers), default=0)
    return {
        "tally": data.get("tally"),
        "latency_ms": {"p50": ms(pct(seconds, 50)), "p95": ms(pct(seconds, 95)),
                       "p99": ms(pct(seconds, 99)), "max": ms(seconds[-1])},
        "wall_s": round(last_answer - released, 3) if answers else None,
        "send_spread_ms": ms(max((a["started"] for a in answers), default=0)
                             - min((a["started"] for a in answers), default=0)),
        "sign_in_s": round(released - (data.get("first_ready_at") or released), 1),
        "cpu": cpu,
        # The clicks alone, without the sign-in phase: is the machine the limit?
        "click_cpu": window.between(released, last_answer) if answers else None,
    }


def browse(bench: Bench) -> None:
    """People browsing and registering with think times, on the browse events."""
    args = bench.args
    bench.phase(f"browse and register: {args.browse_users} people, think 1-3 s, "
                f"{args.browse_seconds} s")
    out = bench.run_dir / "browse.json"
    first = args.people + 1 if args.people + args.browse_users <= args.wrk_people else 1
    window = CpuWindow(bench.cpu_groups())
    window.start()
    code, prefix, command = locust(
        bench, "browse", "loadtests/browse.py", "BrowseUser", args.browse_users,
        max(args.browse_users // 10, 1), f"{args.browse_seconds}s",
        {"EVENT_IDS": ",".join(map(str, bench.events["browse"])), "FIRST_USER": str(first),
         "PASSWORD": DEFAULT_PASSWORD, "THINK": "1,3", "OUT": str(out)}, bench.web.url)
    cpu = window.stop()
    attempts = json.loads(out.read_text())["attempts"] if out.exists() else {}
    bench.settle_activity()
    with bench.engine.connect() as conn:
        for event_id in bench.events["browse"]:
            tried = attempts.get(str(event_id), {}).get("register", 0)
            bench.add_checks(f"browse event {event_id}",
                             invariants.event_checks(conn, event_id, register_attempts=tried))
    bench.results["scenarios"]["browse"] = {
        "command": command, "locust_exit": code, "cpu": cpu,
        "stats": locust_totals(prefix), "attempts": attempts}
    totals = bench.results["scenarios"]["browse"]["stats"]
    bench.say(f"browse: {totals.get('requests')} requests, {totals.get('failures')} failures, "
              f"{totals.get('rps')} req/s, p95 {totals.get('p95')} ms")


def wait_for_emails(bench: Bench, timeout: float = 180) -> None:
    """Until every confirmation email of the rushes has left the outbox (or the timeout)."""
    bench.phase("confirmation emails of the rush (outbox -> worker -> SMTP)")
    with bench.engine.connect() as conn:
        if not invariants.has_outbox(conn):
            bench.say("no outbox table yet: skipped")
            return
    events = [v for k, v in bench.events.items() if k.startswith("rush_")]
    started = time.monotonic()
    while True:
        with bench.engine.connect() as conn:
            rows = dict(conn.execute(text(
                "SELECT status, count(*) FROM outbox WHERE event_id = ANY(:e)"
                " GROUP BY status"), {"e": events}).all())
        pending = sum(v for k, v in rows.items() if k not in ("sent", "failed"))
        if pending == 0 or time.monotonic() - started > timeout:
            break
        bench.say(f"      outbox of the rush events: {rows}")
        time.sleep(5)
    took = round(time.monotonic() - started, 1)
    bench.results["scenarios"]["rush_emails"] = {"outbox": rows, "waited_s": took}
    bench.add_checks("rush emails", [invariants.Check(
        "every rush confirmation email sent", pending == 0 and rows.get("failed", 0) == 0,
        f"{rows} after {took} s")])


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def locust_totals(prefix: Path) -> dict:
    path = Path(f"{prefix}_stats.csv")
    if not path.exists():
        return {}
    with path.open() as f:
        rows = list(csv.DictReader(f))
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    if not total:
        return {}
    return {"requests": int(total["Request Count"]), "failures": int(total["Failure Count"]),
            "rps": round(float(total["Requests/s"]), 1), "p50": total["50%"],
            "p95": total["95%"], "p99": total["99%"],
            "by_name": {r["Name"]: {"requests": int(r["Request Count"]),
                                    "failures": int(r["Failure Count"]), "p95": r["95%"]}
                        for r in rows if r["Name"] != "Aggregated"}}
