"""The bench from start to end: every step in order, everything stopped whatever happens."""

from __future__ import annotations

import time

from loadtests.bench import checks, ratios, scenarios, seed, stackup
from loadtests.bench.args import parse_args
from loadtests.bench.state import Bench
from loadtests.stack import ROOT, run_then_stop


def run(bench: Bench) -> int:
    """Stack up, seed, the rushes, browse, the emails, the ratios (and matrix), the checks."""
    args = bench.args
    bench.phase(f"Turnout bench -> {bench.run_dir.relative_to(ROOT)}")
    stackup.preflight(bench)
    stackup.prepare_resources(bench)
    seed.prepare_data(bench)
    stackup.start_stack(bench)
    seed.forge_credentials(bench)
    for kind, where in seed.rushes(bench):
        scenarios.rush(bench, kind, where)
    scenarios.browse(bench)
    scenarios.wait_for_emails(bench)
    if not args.worker_during_ratios:
        bench.say("stopping the email worker for the wrk runs (its jobs wait in Redis)")
        bench.worker.stop(timeout=60)
    ratios.ratios(bench)
    if args.matrix:
        ratios.matrix(bench)
    bench.stop_web()
    checks.final_checks(bench)
    checks.write_report(bench)
    failed = [c for c in bench.results["checks"] if not c["ok"]]
    report = (bench.run_dir / "report.md").relative_to(ROOT)
    bench.phase(f"done in {time.monotonic() - bench.t0:.0f} s: "
                f"{len(bench.results['checks']) - len(failed)} checks passed, "
                f"{len(failed)} failed; report: {report}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    bench = Bench(parse_args(argv))
    return run_then_stop(lambda: run(bench), bench.teardown, what="bench", say=bench.say,
                         log_path=bench.log_path)
