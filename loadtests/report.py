"""bench-results/<timestamp>/report.md and chart.png from results.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

TARGETS_NOTE = ("Targets from issue 6: rush 1000 on 100 seats exactly 100 confirmed, 0 errors, "
                "p99 < 1 s; (b) >= 25 % of (a); (c) >= 60 % of (a); (b) >= 2 x (d); "
                ">= 1,000 confirmed registrations/s for one event.")


def _ratio(results: dict, key: str, where: str) -> dict | None:
    return next((r for r in results["ratios"] if r["key"] == key and r["where"] == where), None)


def targets(results: dict) -> list[tuple[str, str, bool | None]]:
    rows = []
    for rush in _rushes(results):
        kind = f"{rush['kind']}, {rush['where']}"
        scope = f"rush ({kind})"
        ok_checks = all(c["ok"] for c in results["checks"] if c["scope"] == scope)
        tally = rush["tally"] or {}
        p99 = rush["latency_ms"]["p99"]
        rows.append((f"rush {kind}: every invariant, exactly C confirmed, 0 wrong answers",
                     f"{tally}", ok_checks))
        rows.append((f"rush {kind}: p99 < 1 s", f"p99 {p99:.0f} ms", p99 < 1000))
    for where in ("direct", "nginx"):
        a, b, c, d = (_ratio(results, k, where) for k in "abcd")
        if a and b:
            share = b["rps"] / a["rps"]
            rows.append((f"(b) >= 25 % of (a) [{where}]",
                         f"{b['rps']:,.0f} / {a['rps']:,.0f} = {share:.0%}", share >= 0.25))
        if a and c:
            share = c["rps"] / a["rps"]
            rows.append((f"(c) >= 60 % of (a) [{where}]",
                         f"{c['rps']:,.0f} / {a['rps']:,.0f} = {share:.0%}", share >= 0.60))
        if b and d:
            times = b["rps"] / d["rps"]
            rows.append((f"(b) >= 2 x (d) [{where}]",
                         f"{b['rps']:,.0f} / {d['rps']:,.0f} = {times:.2f} x", times >= 2))
        if b:
            good = b["judged"]["good"] / (b["requests"] / b["rps"]) if b["rps"] else 0
            rows.append((f">= 1,000 confirmed/s, one event [{where}]",
                         f"{good:,.0f} confirmed/s", good >= 1000))
    return rows


def _rushes(results: dict) -> list[dict]:
    return [v for k, v in results["scenarios"].items() if k.startswith("rush_") and "kind" in v]


def _cpu(cpu: dict | None, keys=("gunicorn", "postgres", "redis", "nginx", "worker", "load",
                                  "foreign")) -> str:
    if not cpu:
        return "-"
    return " / ".join(f"{cpu.get(k, 0):.0f}" for k in keys)


CLICK_KEYS = ("machine", "gunicorn", "postgres", "redis", "nginx", "worker", "other")


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Turnout bench", "",
        f"Started {results['started_utc']} on {m['cpus']} CPUs / {m['memory_gib']} GiB "
        f"({m['platform']}), Python {m['python']}, git {m['git']}.",
        f"{m.get('postgres')} · {m.get('redis')} · {m.get('nginx')} · {m.get('wrk')}.",
        f"Load average at start: {m['load_average']}.", "",
        "Command: `make bench` (= `.venv/bin/python -m loadtests.bench "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in results["args"].items()
                   if k in ("people", "seats", "duration", "connections")) + "`)", "",
        "## Targets", "", TARGETS_NOTE, "",
        "| target | measured | met |", "| --- | --- | --- |",
    ]
    for name, value, ok in targets(results):
        lines.append(f"| {name} | {value} | {'yes' if ok else 'NO'} |")
    lines += ["", "## Ratio runs (wrk)", "",
              "Each row: `wrk -t 2 -c C -d D` after a warm-up, with "
              "`loadtests/wrk/turnout.lua` judging every answer. CPU is % of one core over "
              "the run: gunicorn / postgres / redis / nginx / email worker / load generator "
              "/ foreign (other processes on the machine).", "",
              "| run | via | req/s | p50 ms | p90 ms | p99 ms | max ms | good / bad | "
              "transport errors | CPU % |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"]
    for r in results["ratios"]:
        lat = r["latency_ms"]
        lines.append(f"| {r['label'].split(' [')[0]} | {r['where']} | {r['rps']:,.0f} | "
                     f"{lat['p50']} | {lat['p90']} | {lat['p99']} | {lat['max']} | "
                     f"{r['judged']['good']} / {r['judged']['bad']} | "
                     f"{sum(r['errors'].values())} | {_cpu(r['cpu'])} |")
    for where in ("direct", "nginx"):
        a, b, c, d = (_ratio(results, k, where) for k in "abcd")
        if a and b and c:
            extra = f", (b)/(d) = {b['rps'] / d['rps']:.2f}" if d else ""
            d_full = _ratio(results, "dfull", where)
            if d_full:
                extra += (f", full event with the gate / without it = "
                          f"{c['rps'] / d_full['rps']:.2f}")
            lines.append(f"\n{where}: (b)/(a) = {b['rps'] / a['rps']:.0%}, "
                         f"(c)/(a) = {c['rps'] / a['rps']:.0%}{extra}")
    lines += ["", "## Rush (Locust)", "",
              "CPU % (of one core; the machine has 2): over the whole run as above, and "
              "during the clicks alone (release to last answer): machine / gunicorn / postgres "
              "/ redis / nginx / email worker / other (Locust, anything else).", "",
              "| variant | answers | p50 ms | p95 ms | p99 ms | max ms | all answered after | "
              "clicks sent within | sign-in phase | CPU % | CPU % during the clicks |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in _rushes(results):
        lat = r["latency_ms"]
        lines.append(f"| {r['kind']} via {r['where']} | {r['tally']} | {lat['p50']} | "
                     f"{lat['p95']} | {lat['p99']} | {lat['max']} | {r['wall_s']} s | "
                     f"{r['send_spread_ms']} ms | {r['sign_in_s']} s | {_cpu(r['cpu'])} | "
                     f"{_cpu(r.get('click_cpu'), CLICK_KEYS)} |")
    for r in _rushes(results):
        lines.append(f"\n`{r['command']}`")
    emails = results["scenarios"].get("rush_emails")
    if emails:
        lines.append(f"\nRush confirmation emails: {emails['outbox']} "
                     f"(waited {emails['waited_s']} s for the worker).")
    browse = results["scenarios"].get("browse")
    if browse:
        s = browse["stats"]
        lines += ["", "## Browse and register (Locust, think time 1-3 s)", "",
                  f"{s.get('requests')} requests, {s.get('failures')} failures, "
                  f"{s.get('rps')} req/s, p50 {s.get('p50')} ms, p95 {s.get('p95')} ms, "
                  f"p99 {s.get('p99')} ms. CPU: {_cpu(browse['cpu'])}.", "",
                  "| request | count | failures | p95 ms |", "| --- | ---: | ---: | ---: |"]
        for name, row in sorted(s.get("by_name", {}).items()):
            lines.append(f"| {name} | {row['requests']} | {row['failures']} | {row['p95']} |")
        lines.append(f"\n`{browse['command']}`")
    if results.get("matrix"):
        lines += ["", "## gunicorn settings (directly, gate on)", "",
                  "| setting | (a) req/s | (c) req/s | (b) req/s | (b) p99 ms | (b)/(a) | "
                  "(c)/(a) | rush p99 ms | rush answers | bad + errors |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
        for row in results["matrix"]:
            a, b = row["a"], row["b"]
            c, rush = row.get("c"), row.get("rush")  # runs before 2026-11-21 had neither
            lines.append(
                f"| {row['setting']} | {a['rps']:,.0f} | {c['rps'] if c else 0:,.0f} | "
                f"{b['rps']:,.0f} | {b['latency_ms']['p99']} | {b['rps'] / a['rps']:.0%} | "
                f"{c['rps'] / a['rps'] if c else 0:.0%} | "
                f"{rush['latency_ms']['p99'] if rush else '-'} | "
                f"{rush['tally'] if rush else '-'} | "
                f"{b['failures'] + (c['failures'] if c else 0)} |")
    if results.get("outbox"):
        lines += ["", "## Outbox at the end", "", "| kind | status | rows |",
                  "| --- | --- | ---: |"]
        lines += [f"| {k} | {s} | {n} |" for k, s, n in results["outbox"]]
    lines += ["", "## Invariant checks (SQL)", "", "| scope | check | ok | detail |",
              "| --- | --- | --- | --- |"]
    for c in results["checks"]:
        detail = c["detail"].replace("|", "\\|")
        lines.append(f"| {c['scope']} | {c['name']} | {'ok' if c['ok'] else 'FAIL'} | {detail} |")
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def chart(run_dir: Path, results: dict) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    (ax_rush, ax_browse), (ax_ratio, ax_time) = axes

    colours = {"confirmed": "tab:green", "full": "tab:blue", "wrong": "tab:red"}
    for path, marker in zip(sorted(run_dir.glob("rush-*.json")), "ox+^v", strict=False):
        kind = path.stem[len("rush-"):]
        data = json.loads(path.read_text())
        released = data.get("released_at") or 0
        for outcome, colour in colours.items():
            pts = [a for a in data["answers"] if a["outcome"] == outcome]
            if pts:
                ax_rush.scatter([1000 * (a["started"] + a["seconds"] - released) for a in pts],
                                [1000 * a["seconds"] for a in pts], s=6, c=colour,
                                marker=marker, alpha=0.6, label=f"{kind}: {outcome}")
    ax_rush.set_title("Rush: latency of each click by when its answer came")
    ax_rush.set_xlabel("ms after the release")
    ax_rush.set_ylabel("latency ms")
    ax_rush.legend(fontsize=7)

    history = run_dir / "locust-browse_stats_history.csv"
    if history.exists():
        with history.open() as f:
            rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
        if rows:
            t0 = int(rows[0]["Timestamp"])
            xs = [int(r["Timestamp"]) - t0 for r in rows]
            ax_browse.plot(xs, [float(r["Requests/s"]) for r in rows], label="req/s")
            ax_browse.plot(xs, [float(r["Failures/s"]) for r in rows], label="failures/s")
            ax_browse.set_ylabel("requests/s")
            twin = ax_browse.twinx()
            for q, style in (("50%", ":"), ("95%", "--")):
                twin.plot(xs, [float(r[q]) if r[q] not in ("N/A", "") else 0 for r in rows],
                          style, color="tab:red", label=f"p{q[:-1]} ms")
            twin.set_ylabel("latency ms")
            twin.legend(loc="upper right", fontsize=7)
            ax_browse.legend(loc="upper left", fontsize=7)
    ax_browse.set_title("Browse and register: throughput and latency over time")
    ax_browse.set_xlabel("s")

    ratios = results["ratios"]
    if ratios:
        labels = [f"({r['key']}) {r['where']}" for r in ratios]
        bars = ax_ratio.bar(labels, [r["rps"] for r in ratios],
                            color=["tab:grey" if r["key"] == "a" else "tab:green"
                                   if r["key"] == "b" else "tab:blue" if r["key"] == "c"
                                   else "tab:orange" for r in ratios])
        for bar, r in zip(bars, ratios, strict=True):
            ax_ratio.annotate(f"p99 {r['latency_ms']['p99']:.0f} ms",
                              (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                              ha="center", va="bottom", fontsize=7)
        ax_ratio.set_title("wrk: (a) floor, (b) winning, (c) full, (d) gate off")
        ax_ratio.set_ylabel("requests/s")
        ax_ratio.tick_params(axis="x", labelsize=7, rotation=20)

    for label, series in (results.get("timelines") or {}).items():
        if series:
            ax_time.plot([t for t, _ in series], [n for _, n in series], label=label)
    ax_time.set_title("Registrations committed per second (activity_log), winning-path runs")
    ax_time.set_xlabel("s from the first commit of the run")
    ax_time.set_ylabel("confirmed/s")
    ax_time.legend(fontsize=7)

    fig.tight_layout()
    out = run_dir / "chart.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write(run_dir: Path, results: dict) -> None:
    png = chart(run_dir, results)
    text = markdown(results)
    if png:
        text += f"\n![throughput and latency]({png.name})\n"
    (run_dir / "report.md").write_text(text)
