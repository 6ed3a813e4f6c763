"""Where a request's time goes, in one process: the cost of each bench path, optionally profiled.

    .venv/bin/python -m loadtests.profile [--requests 2000] [--pyinstrument full]

Runs the app in this process on a fresh PostgreSQL database (or
BENCH_DATABASE_URL) and the local Redis, through the WSGI test client, one
request at a time, and prints the mean wall time per request of the paths the
wrk ratios measure: (a) /healthz, (b) a winning registration, (c) a
registration for a full event, (d) a winning registration with the gate off.
With no concurrency, wall time here is CPU time of this process plus the
database's and Redis's answers: the quantity the ratio targets are about.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

from loadtests import people
from loadtests.stack import open_resources

PATHS = ("healthz", "win", "full", "win_gate_off")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000, help="requests per path")
    p.add_argument("--pyinstrument", choices=PATHS, action="append", default=[],
                   help="profile this path with pyinstrument (HTML in bench-results/)")
    args = p.parse_args(argv)

    from sqlalchemy import create_engine

    from webapp import create_app

    with contextlib.ExitStack() as resources:
        database_url, redis_url, _created = open_resources(resources)
        engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        n = args.requests
        people.create_people(engine, 1, n)
        organizer = people.create_organizer(engine)
        ids = sorted(people.ids_by_email(engine, 1, n).values())
        base = {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url,
                "SECRET_KEY": "profile-secret", "RATELIMIT_ENABLED": False}
        apps = {True: create_app(base), False: create_app({**base, "SEAT_GATE_ENABLED": False})}
        creds = people.browser_sessions(apps[True], ids)
        full = people.create_event(engine, organizer, "full", 1)
        # As in a real rush, everyone has the event page open first (their user copy is warm).
        warm = apps[True].test_client(use_cookies=False)
        for c in creds:
            page = warm.get(f"/events/{full}", headers={"Cookie": c.cookie,
                                                        "User-Agent": people.BENCH_USER_AGENT})
            assert "Sign out" in page.text, page.status_code
        results = {}
        for path in PATHS:
            app = apps[path != "win_gate_off"]
            event = (full if path == "full"
                     else people.create_event(engine, organizer, path, 100_000))
            client = app.test_client(use_cookies=False)
            profiler = None
            if path in args.pyinstrument:
                from pyinstrument import Profiler
                profiler = Profiler(interval=0.0002)
            warm = min(200, n // 10)
            started = None
            for i, c in enumerate(creds):
                if i == warm:
                    if profiler:
                        profiler.start()
                    started, cpu = time.perf_counter(), time.process_time()
                if path == "healthz":
                    answer = client.get("/healthz")
                    ok = answer.status_code == 200
                else:
                    answer = client.post(f"/events/{event}/register", headers={
                        "Cookie": c.cookie, "X-CSRFToken": c.csrf, "HX-Request": "true",
                        "User-Agent": people.BENCH_USER_AGENT})
                    ok = (("This event is full" in answer.text) if path == "full"
                          else "/confirmation" in answer.headers.get("HX-Location", ""))
                if not ok and not (path == "full" and i == 0):  # the first one fills it
                    raise SystemExit(f"{path}: unexpected answer {answer.status_code} "
                                     f"{answer.text[:300]}")
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            results[path] = (took / (n - warm) * 1000, cpu / (n - warm) * 1000)
            if profiler:
                profiler.stop()
                out = Path("bench-results") / f"profile-{path}.html"
                out.parent.mkdir(exist_ok=True)
                out.write_text(profiler.output_html())
                print(profiler.output_text(unicode=True, color=False, show_all=False))
        floor, floor_cpu = results["healthz"]
        print(f"{'path':14} {'wall ms':>8} {'cpu ms':>8}  floor/this (wall, cpu)")
        for path, (wall, cpu) in results.items():
            print(f"{path:14} {wall:8.3f} {cpu:8.3f}  {floor / wall:6.1%} {floor_cpu / cpu:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
