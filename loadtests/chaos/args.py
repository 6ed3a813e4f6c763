"""The campaign's command line (`python -m loadtests.chaos --help`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtests.chaos.faults import FAULTS
from tests.support.processes import ROOT

DESCRIPTION = ("`make chaos`: rushes over the JSON API while faults strike (web workers, "
               "the RQ worker, Redis, PostgreSQL, SMTP, a dead seat hold); a checker reads "
               "the histories, SQL and the SMTP sink's record and prints one row per fault.")


def kinds(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown kinds {unknown}; choose from "
                                         f"{','.join(FAULTS)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.chaos", description=DESCRIPTION)
    p.add_argument("--trials", type=int, default=None,
                   help="trials of each fault kind (default 3; --quick: 1)")
    p.add_argument("--kinds", type=kinds, default=list(FAULTS),
                   help=f"comma-separated subset of {','.join(FAULTS)} (default: all)")
    p.add_argument("--clients", type=int, default=None,
                   help="clients per rush (default 250; --quick: 100)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: from time)")
    p.add_argument("--quick", action="store_true",
                   help="1 trial per kind, 100 clients, SMTP down 15 s, drift after 60 s")
    p.add_argument("--window", type=float, default=None,
                   help="seconds over which a rush's clients arrive (default 8; --quick: 5)")
    p.add_argument("--smtp-down", type=float, default=None,
                   help="seconds the SMTP sink refuses connections (default 60; --quick: 15)")
    p.add_argument("--drift-after", type=float, default=None,
                   help="seconds after a fault's end to compare Redis with SQL (default 120)")
    p.add_argument("--drain-seconds", type=float, default=300,
                   help="how long after the last outage to wait for emails (SPEC: 300)")
    p.add_argument("--hold-window", type=float, default=5.0,
                   help="seconds an attempt in flight may hold a seat before a full answer "
                        "it causes counts as false (default 5)")
    p.add_argument("--grace", type=float, default=2.0,
                   help="seconds after an 'already registered' answer within which the "
                        "person's own commit may land (default 2)")
    p.add_argument("--web-workers", type=int, default=3)
    p.add_argument("--web-threads", type=int, default=4)
    p.add_argument("--out", type=Path, default=ROOT / "chaos-results")
    args = p.parse_args(argv)
    quick = args.quick
    for name, full, short in (("trials", 3, 1), ("clients", 250, 100), ("window", 8.0, 5.0),
                              ("smtp_down", 60.0, 15.0), ("drift_after", 120.0, 60.0)):
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    return args
