"""The campaign from start to end: the stack, the trials, the checks, the report; every
process it started is stopped whatever happens."""

from __future__ import annotations

import time
from pathlib import Path

from loadtests.chaos import table
from loadtests.chaos.args import parse_args
from loadtests.chaos.campaign import Campaign
from loadtests.chaos.faults import FAULTS
from loadtests.chaos.servers import missing_binaries
from loadtests.stack import run_then_stop


class Output:
    def __init__(self, run_dir: Path) -> None:
        self.t0 = time.monotonic()
        self.log = run_dir / "chaos.log"

    def say(self, message: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {message}"
        print(line, flush=True)
        with self.log.open("a") as f:
            f.write(line + "\n")


def report(campaign: Campaign, seconds: float) -> tuple[str, list[str]]:
    args, trials = campaign.args, campaign.trials
    results = [t.result for t in trials]
    reasons = table.failed(results)
    if campaign.reconcile and not campaign.reconcile["ok"]:
        reasons.append(f"final flask seats reconcile: {campaign.reconcile['detail']}")
    titles = {name: f.title for name, f in FAULTS.items()}
    faults = "\n".join(f"- **{f.title}** (`{name}`): {f.what}" for name, f in FAULTS.items()
                       if name in args.kinds)
    per_trial = "\n".join(
        f"- trial {t.index} `{t.fault.name}`: "
        + (f"{t.record.detail}, outage {t.record.ended - t.record.started:.1f} s"
           if t.record else "no fault record")
        + (f"; examples {t.result.examples}" if t.result.examples else "")
        + (f"; {t.notes}" if t.notes else "") for t in trials)
    restarts = "\n".join(
        f"- {'killed by the campaign' if r.planned else 'EXITED BY ITSELF'} (exit code "
        f"{r.exit_code}), restarted {r.restarted_at - r.died_at:.1f} s later"
        f" ({time.strftime('%H:%M:%S', time.gmtime(r.died_at))} UTC)"
        for r in campaign.rig.supervisor.restarts) or "- none"
    text = f"""# Chaos campaign {campaign.run_dir.name}

{len(trials)} trials in {seconds / 60:.1f} min; seed {args.seed}; {args.clients} clients per
rush arriving over {args.window:g} s; gunicorn {args.web_workers} x {args.web_threads};
hold window {args.hold_window:g} s (a 409 event_full counts as false when SQL had a free
place from the request's start to that long after its answer); grace for 'already
registered' {args.grace:g} s; counter drift read {args.drift_after:g} s after each fault's
end; emails awaited up to {args.drain_seconds:g} s after the last outage.

{table.markdown(results, titles)}

Final `flask seats reconcile`: {campaign.reconcile.get('detail', 'not run')}

**{'FAILED: ' + '; '.join(reasons) if reasons else 'every invariant held'}**

## Faults

{faults}

## Worker restarts by the supervisor (systemd's Restart=always)

{restarts}

## Trials

{per_trial}
"""
    return text, reasons


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_binaries()
    if missing:
        print(f"make chaos needs {missing}")
        return 2
    if args.seed is None:
        args.seed = int(time.time())
    run_dir = args.out / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    run_dir.mkdir(parents=True, exist_ok=True)
    out = Output(run_dir)
    campaign = Campaign(args, run_dir, say=out.say)
    out.say(f"Turnout chaos campaign -> {run_dir}: kinds {args.kinds}, {args.trials} "
            f"trial(s) each, {args.clients} clients, seed {args.seed}")

    def run() -> int:
        campaign.run()
        campaign.rig.close()
        campaign.write_results()
        text, reasons = report(campaign, time.monotonic() - out.t0)
        (run_dir / "report.md").write_text(text)
        print(text, flush=True)
        return 1 if reasons else 0

    return run_then_stop(run, campaign.rig.close, what="campaign", say=out.say,
                         log_path=out.log)
