"""The bench's command line (`python -m loadtests.bench --help`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.support.processes import ROOT

DESCRIPTION = ("`make bench`: the rush and the ratios, measured on this machine, "
               "invariants checked in SQL.")
MATRIX = [("gthread", 4, 4), ("gthread", 8, 2), ("gthread", 2, 8), ("gthread", 3, 8),
          ("gthread", 4, 8), ("sync", 8, 1)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench", description=DESCRIPTION)
    p.add_argument("--people", type=int, default=1000, help="people in the rush (default 1000)")
    p.add_argument("--seats", type=int, default=100, help="seats of the rush event (default 100)")
    p.add_argument("--browse-users", type=int, default=300)
    p.add_argument("--browse-seconds", type=int, default=45)
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up per run")
    p.add_argument("--connections", type=int, default=100, help="wrk connections (default 100)")
    p.add_argument("--wrk-people", type=int, default=30000,
                   help="distinct people for the winning-path runs (each registers once)")
    p.add_argument("--matrix", action="store_true",
                   help="also measure (a) and (b) for several gunicorn worker settings")
    p.add_argument("--no-nginx", action="store_true", help="skip the runs through nginx")
    p.add_argument("--no-api", action="store_true", help="skip the JSON API rush")
    p.add_argument("--worker-during-ratios", action="store_true",
                   help="keep the email worker running during the wrk runs (it competes for CPU)")
    p.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    p.add_argument("--out", type=Path, default=ROOT / "bench-results")
    return p.parse_args(argv)
