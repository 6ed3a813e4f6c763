"""The wrk ratio runs: (a) floor, (b) winning, (c) full event, (d) gate off; the settings matrix."""

from __future__ import annotations

from pathlib import Path

from loadtests import invariants
from loadtests.bench.args import MATRIX
from loadtests.bench.scenarios import rush
from loadtests.bench.state import Bench
from loadtests.measure import WrkResult, run_wrk, wait_for_quiet


def wrk(bench: Bench, label: str, url: str, mode: str, expect: str, events: list[int],
        credentials: Path | None, duration: int | None = None,
        spread: bool = False) -> WrkResult:
    """One wrk run after a warm-up (on a throw-away event when winning), once the machine
    is quiet; what it sent is counted against each event's activity rows at the end."""
    args = bench.args
    threads = 2
    busy = wait_for_quiet(say=bench.say)
    if args.warmup:
        warm_events = events if expect != "win" else [bench.new_event("warm-up")]
        warm = run_wrk(f"{label} warm-up", url, mode, expect, credentials=credentials,
                       events=warm_events, threads=threads, connections=args.connections,
                       duration=args.warmup, cpu_groups=bench.cpu_groups(),
                       log=bench.run_dir / "wrk.log", say=bench.say)
        if mode != "healthz":
            bench.wrk_attempts.setdefault(tuple(warm_events), []).append(
                (warm.requests, args.connections))
    result = run_wrk(label, url, mode, expect, credentials=credentials, events=events,
                     threads=threads, connections=args.connections,
                     duration=duration or args.duration, cpu_groups=bench.cpu_groups(),
                     log=bench.run_dir / "wrk.log", say=bench.say, spread=spread)
    result.cpu["busy_before"] = round(busy, 1)
    if mode != "healthz":
        bench.wrk_attempts.setdefault(tuple(events), []).append(
            (result.requests, args.connections))
    bench.say(f"   {label}: {result.rps:,.0f} req/s, p50 {result.latency_ms['p50']} ms, "
              f"p99 {result.latency_ms['p99']} ms, judged {result.judged['good']} good / "
              f"{result.judged['bad']} bad, transport errors {sum(result.errors.values())}; "
              f"cpu {result.cpu}")
    return result


def record_ratio(bench: Bench, key: str, where: str, result: WrkResult,
                 event_id: int | None) -> None:
    entry = {"key": key, "where": where, "event_id": event_id, **result.as_dict()}
    bench.results["ratios"].append(entry)
    bench.add_checks(f"wrk {result.label}", [invariants.Check(
        "every answer judged correct, no transport error", result.failures == 0,
        f"{result.judged}, errors {result.errors}")])


def gate_on_set(bench: Bench, where: str, url: str) -> None:
    """(a), (c), (b); directly also (b) spread over 10 events."""
    creds, full = bench.htmx_creds, bench.events["full"]
    a = wrk(bench, f"(a) /healthz [{where}]", url, "healthz", "ok", [], None)
    c = wrk(bench, f"(c) register, full event [{where}]", url, "htmx", "full", [full], creds)
    b_event = bench.new_event(f"(b) {where}")
    b = wrk(bench, f"(b) register, winning [{where}]", url, "htmx", "win", [b_event], creds)
    for key, result, event_id in (("a", a, None), ("b", b, b_event), ("c", c, full)):
        record_ratio(bench, key, where, result, event_id)
    if where == "direct":  # what the one hot event row costs: (b) over 10 events
        spread = [bench.new_event(f"(b spread) {i}") for i in range(10)]
        b2 = wrk(bench, "(b) winning, 10 events round-robin [direct]", url, "htmx", "win",
                 spread, creds, spread=True)
        record_ratio(bench, "b10", where, b2, None)


def gate_off_set(bench: Bench, where: str, url: str) -> None:
    """(d); directly also (c) under the SQL guard alone."""
    creds, full = bench.htmx_creds, bench.events["full"]
    d_event = bench.new_event(f"(d) {where}")
    d = wrk(bench, f"(d) register, winning, gate off [{where}]", url, "htmx", "win",
            [d_event], creds)
    record_ratio(bench, "d", where, d, d_event)
    if where == "direct":  # what the gate buys the losers: (c) under the SQL guard
        d_full = wrk(bench, "(d) register, full event, gate off [direct]", url, "htmx",
                     "full", [full], creds)
        record_ratio(bench, "dfull", where, d_full, full)


def ratios(bench: Bench) -> None:
    """Every ratio set directly and through nginx, gate on, then gunicorn again with it off."""
    args = bench.args
    bench.phase(f"ratios with wrk (-t 2 -c {args.connections}, {args.duration} s "
                f"after {args.warmup} s warm-up): directly and through nginx")
    gate_on_set(bench, "direct", bench.web.url)
    if bench.nginx:
        gate_on_set(bench, "nginx", bench.nginx.url)
    bench.phase("(d): restarting gunicorn with SEAT_GATE_ENABLED=0 (the SQL guard alone)")
    bench.stop_service(bench.web)
    bench.web = bench.start_gunicorn("gate-off", extra_env={"SEAT_GATE_ENABLED": "0"})
    gate_off_set(bench, "direct", bench.web.url)
    if bench.nginx:
        gate_off_set(bench, "nginx", bench.nginx.url)


def matrix(bench: Bench) -> None:
    """(a), (c), (b) and the htmx rush for each gunicorn setting of MATRIX, directly."""
    bench.phase("gunicorn settings matrix: (a), (c), (b) and the htmx rush, directly, gate on")
    creds, full = bench.htmx_creds, bench.events["full"]
    for worker_class, workers, threads in MATRIX:
        bench.stop_web()
        label = f"{worker_class}-{workers}x{threads}"
        bench.web = bench.start_gunicorn(label, workers=workers, threads=threads,
                                         worker_class=worker_class)
        url = bench.web.url
        a = wrk(bench, f"[{label}] (a) /healthz", url, "healthz", "ok", [], None)
        c = wrk(bench, f"[{label}] (c) full event", url, "htmx", "full", [full], creds)
        b = wrk(bench, f"[{label}] (b) winning", url, "htmx", "win",
                [bench.new_event(f"matrix {label}")], creds)
        result = rush(bench, "htmx", "direct", setting=label)
        bench.results["matrix"].append({"setting": label, "a": a.as_dict(), "b": b.as_dict(),
                                        "c": c.as_dict(), "rush": result})
