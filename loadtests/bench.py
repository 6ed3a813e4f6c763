"""`make bench`: the rush and the ratios, measured on this machine, invariants checked in SQL.

    python -m loadtests.bench [--people 1000] [--seats 100] [--duration 10] [--matrix]

It brings up gunicorn (deploy/gunicorn.conf.py), nginx, the worker, an SMTP
sink, a fresh PostgreSQL database and a Redis database index of its own;
prepares people in bulk; runs the Locust scenarios (rush through htmx and
through the JSON API, browse and register) and the wrk ratio runs (a) floor,
(b) winning registration, (c) full event, (d) winning with the Redis gate
off, directly and through nginx; checks the invariants in SQL; writes
bench-results/<timestamp>/ (report.md, chart.png, results.json, logs); and
stops everything it started, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from loadtests import invariants, people
from loadtests.common import DEFAULT_PASSWORD, ENV_PREFIX
from loadtests.measure import CpuWindow, WrkResult, run_wrk, standard_groups, wait_for_quiet
from loadtests.stack import (
    ROOT,
    Gunicorn,
    Nginx,
    Resources,
    Service,
    StackConfig,
    claim_redis,
    create_database,
    free_port,
    postgres_server_url,
    start_mail_sink,
    start_worker,
    upgrade_schema,
)

MATRIX = [("gthread", 4, 4), ("gthread", 8, 2), ("gthread", 2, 8), ("gthread", 3, 8),
          ("gthread", 4, 8), ("sync", 8, 1)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench",
                                description=__doc__.split("\n")[0])
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


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_dir = args.out / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.run_dir / "bench.log"
        self.t0 = time.monotonic()
        self.services: list[Service] = []
        self.resources: Resources | None = None
        self.results: dict = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "args": {k: str(v) for k, v in vars(args).items()},
                              "machine": machine_info(), "scenarios": {}, "ratios": [],
                              "matrix": [], "checks": [], "notes": []}
        # events of one wrk run -> (requests answered, connections) of each run on them
        self.wrk_attempts: dict[tuple[int, ...], list[tuple[int, int]]] = {}

    # --- output -----------------------------------------------------------------

    def say(self, message: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {message}"
        print(line, flush=True)
        with self.log_path.open("a") as f:
            f.write(line + "\n")

    def phase(self, title: str) -> None:
        self.say(f"== {title}")

    # --- the run ------------------------------------------------------------------

    def run(self) -> int:
        args = self.args
        self.phase(f"Turnout bench -> {self.run_dir.relative_to(ROOT)}")
        self.preflight()
        self.prepare_resources()
        self.prepare_data()
        self.start_stack()
        self.forge_credentials()
        for kind, where in self.rushes():
            self.rush(kind, where)
        self.browse()
        self.wait_for_emails()
        if not args.worker_during_ratios:
            self.say("stopping the email worker for the wrk runs (its jobs wait in Redis)")
            self.worker.stop(timeout=60)
        self.ratios()
        if args.matrix:
            self.matrix()
        self.stop_web()
        self.final_checks()
        self.write_report()
        failed = [c for c in self.results["checks"] if not c["ok"]]
        report = (self.run_dir / "report.md").relative_to(ROOT)
        self.phase(f"done in {time.monotonic() - self.t0:.0f} s: "
                   f"{len(self.results['checks']) - len(failed)} checks passed, "
                   f"{len(failed)} failed; report: {report}")
        return 1 if failed else 0

    def preflight(self) -> None:
        missing = [tool for tool in ("wrk",) if shutil.which(tool) is None]
        if missing:
            raise SystemExit(f"missing {missing}: `apt-get install -y wrk nginx` (make bench "
                             "does this when it runs as root)")
        if shutil.which("nginx") is None and not self.args.no_nginx:
            self.say("nginx not installed: skipping the runs through nginx")
            self.args.no_nginx = True
        self.has_api = (ROOT / "webapp" / "api").is_dir() and not self.args.no_api
        if not self.has_api:
            self.args.no_api = True

    def prepare_resources(self) -> None:
        self.phase("database and Redis")
        explicit_db = os.environ.get("BENCH_DATABASE_URL")
        if explicit_db:
            database_url, created = explicit_db, False
        else:
            database_url, created = create_database(postgres_server_url()), True
        redis_url, claim = claim_redis(os.environ.get("REDIS_URL"))
        self.resources = Resources(database_url, redis_url, created, claim)
        self.say(f"database {database_url.rsplit('/', 1)[-1]} ({'created' if created else 'given'})"
                 f", redis {redis_url}")
        upgrade_schema(database_url, redis_url)
        self.config = StackConfig(self.run_dir, database_url, redis_url)

    def prepare_data(self) -> None:
        from webapp import create_app

        args = self.args
        self.phase("people and events (bulk SQL)")
        self.app = create_app({"SQLALCHEMY_DATABASE_URI": self.config.database_url,
                               "REDIS_URL": self.config.redis_url,
                               "SECRET_KEY": self.config.secret_key,
                               "PROXY_FIX_TRUSTED_HOPS": 1})
        self.engine = create_engine(self.app.config["SQLALCHEMY_DATABASE_URI"])
        total = max(args.people, args.browse_users, args.wrk_people)
        started = time.monotonic()
        people.create_people(self.engine, 1, total)
        self.organizer = people.create_organizer(self.engine)
        self.say(f"{total} people inserted in {time.monotonic() - started:.1f} s "
                 f"(one precomputed {people.BENCH_HASH_METHOD} hash)")
        e = people.create_event
        self.events = {
            **{f"rush_{kind}_{where}": e(self.engine, self.organizer, f"Rush ({kind}, {where})",
                                         args.seats) for kind, where in self.rushes()},
            "browse": [e(self.engine, self.organizer, f"Browse {i}", cap, waitlist=wl,
                         waitlist_capacity=wc, starts_in=timedelta(days=3 + i))
                       for i, (cap, wl, wc) in enumerate(
                           [(20, False, None), (50, True, None), (10, True, 5),
                            (200, False, None), (5, False, None), (100, True, 20)])],
            "full": e(self.engine, self.organizer, "Already full", 1),
        }
        self.say(f"events: {json.dumps(self.events)}")

    def rushes(self) -> list[tuple[str, str]]:
        """The rush through htmx directly and through nginx, and through the JSON API."""
        via_proxy = "direct" if self.args.no_nginx else "nginx"
        runs = [("htmx", "direct")] + ([] if self.args.no_nginx else [("htmx", "nginx")])
        return runs + ([] if self.args.no_api else [("api", via_proxy)])

    def start_stack(self) -> None:
        self.phase("starting the stack")
        self.services.append(start_mail_sink(self.config))
        self.worker = start_worker(self.config)
        self.services.append(self.worker)
        self.web_port = free_port()
        self.web = self.start_gunicorn("gate-on")
        self.nginx = None
        if not self.args.no_nginx:
            self.nginx = Nginx(self.config, free_port(), self.web_port)
            self.services.append(self.nginx)
            self.nginx.wait_ready()
            answer = requests.get(self.nginx.url + "/healthz", timeout=5)
            static = requests.get(self.nginx.url + "/static/favicon.svg", timeout=5)
            if answer.text != "ok" or static.status_code != 200:
                raise RuntimeError("nginx does not pass requests on / serve static files")
            self.say(f"nginx {self.nginx.url} -> gunicorn :{self.web_port} (keep-alive upstream),"
                     f" static files from disk")

    def start_gunicorn(self, label: str, **kwargs) -> Gunicorn:
        server = Gunicorn(self.config, self.web_port, label=label, **kwargs)
        self.services.append(server)
        server.wait_ready()
        self.say(f"gunicorn [{label}] {server.url}, {server.workers} workers, "
                 f"log {server.log_path.name}")
        return server

    def stop_service(self, service: Service) -> None:
        service.stop()
        with contextlib.suppress(ValueError):
            self.services.remove(service)

    def stop_web(self) -> None:
        for service in [s for s in self.services if isinstance(s, Gunicorn)]:
            self.stop_service(service)

    def cpu_groups(self) -> dict:
        def family(kind):
            return lambda: [p for s in self.services if isinstance(s, kind) for p in s.processes()]
        return standard_groups({"gunicorn": family(Gunicorn), "nginx": family(Nginx),
                                "worker": lambda: self.worker.processes()})

    # --- credentials ------------------------------------------------------------

    def forge_credentials(self) -> None:
        self.phase("sessions for the wrk runs")
        started = time.monotonic()
        ids = people.ids_by_email(self.engine, 1, self.args.wrk_people)
        self.wrk_user_ids = sorted(ids.values())
        creds = people.browser_sessions(self.app, self.wrk_user_ids)
        self.htmx_creds = self.run_dir / "wrk-people-htmx.tsv"
        self.htmx_creds.write_text("".join(f"{c.cookie}\t{c.csrf}\n" for c in creds))
        # The forged cookie must be exactly what /login would give: check one.
        page = requests.get(f"{self.web.url}/events/{self.events['full']}", timeout=10,
                            headers={"Cookie": creds[0].cookie,
                                     "User-Agent": people.BENCH_USER_AGENT})
        if "Sign out" not in page.text or "Set-Cookie" in page.headers:
            raise RuntimeError("a prepared session cookie is not accepted as a signed-in person")
        # Fill the (c) event with a real registration.
        filled = requests.post(f"{self.web.url}/events/{self.events['full']}/register",
                               timeout=10, headers={"Cookie": creds[-1].cookie,
                                                    "X-CSRFToken": creds[-1].csrf,
                                                    "HX-Request": "true",
                                                    "User-Agent": people.BENCH_USER_AGENT})
        if "confirmation" not in filled.headers.get("HX-Location", ""):
            raise RuntimeError(f"could not fill the full event: {filled.status_code}")
        started_pages = time.monotonic()
        people.open_event_page(self.web.url, creds, self.events["full"])
        self.say(f"every wrk person opened the event page first, as in a real rush "
                 f"({time.monotonic() - started_pages:.1f} s)")
        self.wrk_attempts.setdefault((self.events["full"],), []).append((1, 0))
        self.say(f"{len(creds)} browser sessions in {time.monotonic() - started:.1f} s, "
                 f"checked against the server")

    # --- Locust -----------------------------------------------------------------

    def locust(self, label: str, locustfile: str, user_class: str, users: int, spawn_rate: int,
               run_time: str, settings: dict[str, str], host: str) -> tuple[int, Path, str]:
        prefix = self.run_dir / f"locust-{label}"
        argv = [sys.executable, "-m", "locust", "-f", locustfile, "--headless",
                "-u", str(users), "-r", str(spawn_rate), "-t", run_time, "--host", host,
                "--csv", str(prefix), "--csv-full-history", "--only-summary",
                "--stop-timeout", "10", "--loglevel", "WARNING", user_class]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.update({ENV_PREFIX + k: v for k, v in settings.items()})
        command = " ".join([*(f"{ENV_PREFIX}{k}={v}" for k, v in settings.items()),
                            "python", *argv[1:]])
        self.say(f"$ {command}")
        with (self.run_dir / f"locust-{label}.log").open("w") as log:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)
            try:
                for line in proc.stdout:
                    log.write(line)
                    if line.startswith("[rush]") or "Error" in line or "Traceback" in line:
                        self.say("      " + line.rstrip())
                proc.wait(timeout=60)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        return proc.returncode, prefix, command

    def rush(self, kind: str, where: str, setting: str | None = None) -> dict:
        """One rush; with a setting (the matrix), on a new event and reported under it."""
        args = self.args
        label = f"{kind}_{where}" + (f"_{setting}" if setting else "")
        if setting:
            self.events[f"rush_{label}"] = people.create_event(
                self.engine, self.organizer, f"Rush [{setting}]", args.seats)
        event_id = self.events[f"rush_{label}"]
        host = self.nginx.url if where == "nginx" else self.web.url
        self.phase(f"rush through {'htmx' if kind == 'htmx' else 'the JSON API'} ({where}): "
                   f"{args.people} people, {args.seats} seats, event {event_id}")
        out = self.run_dir / f"rush-{label}.json"
        window = CpuWindow(self.cpu_groups())
        window.start()
        code, _prefix, command = self.locust(
            f"rush-{label}", "loadtests/rush.py",
            "HtmxRushUser" if kind == "htmx" else "ApiRushUser",
            args.people, args.people, "300s",
            {"EVENT_ID": str(event_id), "PEOPLE": str(args.people), "FIRST_USER": "1",
             "PASSWORD": DEFAULT_PASSWORD, "OUT": str(out)}, host)
        cpu = window.stop()
        data = json.loads(out.read_text()) if out.exists() else {"answers": [], "tally": {}}
        answers = data["answers"]
        self.settle_activity()
        with self.engine.connect() as conn:
            checks = invariants.rush_checks(conn, event_id, args.seats, answers, args.people)
        self.add_checks(f"rush ({kind}, {where}{', ' + setting if setting else ''})", checks)
        seconds = sorted(a["seconds"] for a in answers) or [0]
        released = data.get("released_at") or 0
        last_answer = max((a["started"] + a["seconds"] for a in answers), default=0)
        stats = {
            "event_id": event_id, "command": command, "locust_exit": code,
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
            "answers_file": out.name,
        }
        stats["kind"], stats["where"] = kind, where
        if setting:
            return stats
        self.results["scenarios"][f"rush_{label}"] = stats
        self.say(f"rush ({kind}, {where}): {stats['tally']}, p99 {stats['latency_ms']['p99']} ms, "
                 f"all answered {stats['wall_s']} s after the release; "
                 f"CPU during the clicks (% of one core) {stats['click_cpu']}")
        return stats

    def browse(self) -> None:
        args = self.args
        self.phase(f"browse and register: {args.browse_users} people, think 1-3 s, "
                   f"{args.browse_seconds} s")
        out = self.run_dir / "browse.json"
        first = args.people + 1 if args.people + args.browse_users <= args.wrk_people else 1
        window = CpuWindow(self.cpu_groups())
        window.start()
        code, prefix, command = self.locust(
            "browse", "loadtests/browse.py", "BrowseUser", args.browse_users,
            max(args.browse_users // 10, 1), f"{args.browse_seconds}s",
            {"EVENT_IDS": ",".join(map(str, self.events["browse"])), "FIRST_USER": str(first),
             "PASSWORD": DEFAULT_PASSWORD, "THINK": "1,3", "OUT": str(out)}, self.web.url)
        cpu = window.stop()
        attempts = json.loads(out.read_text())["attempts"] if out.exists() else {}
        self.settle_activity()
        with self.engine.connect() as conn:
            for event_id in self.events["browse"]:
                tried = attempts.get(str(event_id), {}).get("register", 0)
                self.add_checks(f"browse event {event_id}",
                                invariants.event_checks(conn, event_id, register_attempts=tried))
        self.results["scenarios"]["browse"] = {
            "command": command, "locust_exit": code, "cpu": cpu,
            "stats": locust_totals(prefix), "attempts": attempts}
        totals = self.results["scenarios"]["browse"]["stats"]
        self.say(f"browse: {totals.get('requests')} requests, {totals.get('failures')} failures, "
                 f"{totals.get('rps')} req/s, p95 {totals.get('p95')} ms")

    def wait_for_emails(self, timeout: float = 180) -> None:
        self.phase("confirmation emails of the rush (outbox -> worker -> SMTP)")
        with self.engine.connect() as conn:
            if not invariants.has_outbox(conn):
                self.say("no outbox table yet: skipped")
                return
        events = [v for k, v in self.events.items() if k.startswith("rush_")]
        started = time.monotonic()
        while True:
            with self.engine.connect() as conn:
                rows = dict(conn.execute(text(
                    "SELECT status, count(*) FROM outbox WHERE event_id = ANY(:e)"
                    " GROUP BY status"), {"e": events}).all())
            pending = sum(v for k, v in rows.items() if k not in ("sent", "failed"))
            if pending == 0 or time.monotonic() - started > timeout:
                break
            self.say(f"      outbox of the rush events: {rows}")
            time.sleep(5)
        took = round(time.monotonic() - started, 1)
        self.results["scenarios"]["rush_emails"] = {"outbox": rows, "waited_s": took}
        self.add_checks("rush emails", [invariants.Check(
            "every rush confirmation email sent", pending == 0 and rows.get("failed", 0) == 0,
            f"{rows} after {took} s")])

    # --- wrk ratios --------------------------------------------------------------

    def wrk(self, label: str, url: str, mode: str, expect: str, events: list[int],
            credentials: Path | None, duration: int | None = None,
            spread: bool = False) -> WrkResult:
        args = self.args
        threads = 2
        busy = wait_for_quiet(say=self.say)
        if args.warmup:
            warm_events = events if expect != "win" else [self.new_event("warm-up")]
            warm = run_wrk(f"{label} warm-up", url, mode, expect, credentials=credentials,
                           events=warm_events, threads=threads, connections=args.connections,
                           duration=args.warmup, cpu_groups=self.cpu_groups(),
                           log=self.run_dir / "wrk.log", say=self.say)
            if mode != "healthz":
                self.wrk_attempts.setdefault(tuple(warm_events), []).append(
                    (warm.requests, args.connections))
        result = run_wrk(label, url, mode, expect, credentials=credentials, events=events,
                         threads=threads, connections=args.connections,
                         duration=duration or args.duration, cpu_groups=self.cpu_groups(),
                         log=self.run_dir / "wrk.log", say=self.say, spread=spread)
        result.cpu["busy_before"] = round(busy, 1)
        if mode != "healthz":
            self.wrk_attempts.setdefault(tuple(events), []).append(
                (result.requests, args.connections))
        self.say(f"   {label}: {result.rps:,.0f} req/s, p50 {result.latency_ms['p50']} ms, "
                 f"p99 {result.latency_ms['p99']} ms, judged {result.judged['good']} good / "
                 f"{result.judged['bad']} bad, transport errors {sum(result.errors.values())}; "
                 f"cpu {result.cpu}")
        return result

    def new_event(self, title: str) -> int:
        return people.create_event(self.engine, self.organizer, title, 100_000)

    def ratio_set(self, where: str, url: str, *, gate: bool) -> None:
        creds = self.htmx_creds
        if gate:
            a = self.wrk(f"(a) /healthz [{where}]", url, "healthz", "ok", [], None)
            c = self.wrk(f"(c) register, full event [{where}]", url, "htmx", "full",
                         [self.events["full"]], creds)
            b_event = self.new_event(f"(b) {where}")
            b = self.wrk(f"(b) register, winning [{where}]", url, "htmx", "win", [b_event], creds)
            for key, result, event_id in (("a", a, None), ("b", b, b_event),
                                          ("c", c, self.events["full"])):
                self.record_ratio(key, where, result, event_id)
            if where == "direct":  # what the one hot event row costs: (b) over 10 events
                spread = [self.new_event(f"(b spread) {i}") for i in range(10)]
                b2 = self.wrk("(b) winning, 10 events round-robin [direct]", url, "htmx", "win",
                              spread, creds, spread=True)
                self.record_ratio("b10", where, b2, None)
        else:
            d_event = self.new_event(f"(d) {where}")
            d = self.wrk(f"(d) register, winning, gate off [{where}]", url, "htmx", "win",
                         [d_event], creds)
            self.record_ratio("d", where, d, d_event)
            if where == "direct":  # what the gate buys the losers: (c) under the SQL guard
                d_full = self.wrk("(d) register, full event, gate off [direct]", url, "htmx",
                                  "full", [self.events["full"]], creds)
                self.record_ratio("dfull", where, d_full, self.events["full"])

    def record_ratio(self, key: str, where: str, result: WrkResult,
                     event_id: int | None) -> None:
        entry = {"key": key, "where": where, "event_id": event_id, **result.as_dict()}
        self.results["ratios"].append(entry)
        self.add_checks(f"wrk {result.label}", [invariants.Check(
            "every answer judged correct, no transport error", result.failures == 0,
            f"{result.judged}, errors {result.errors}")])

    def ratios(self) -> None:
        self.phase(f"ratios with wrk (-t 2 -c {self.args.connections}, {self.args.duration} s "
                   f"after {self.args.warmup} s warm-up): directly and through nginx")
        self.ratio_set("direct", self.web.url, gate=True)
        if self.nginx:
            self.ratio_set("nginx", self.nginx.url, gate=True)
        self.phase("(d): restarting gunicorn with SEAT_GATE_ENABLED=0 (the SQL guard alone)")
        self.stop_service(self.web)
        self.web = self.start_gunicorn("gate-off", extra_env={"SEAT_GATE_ENABLED": "0"})
        self.ratio_set("direct", self.web.url, gate=False)
        if self.nginx:
            self.ratio_set("nginx", self.nginx.url, gate=False)

    def matrix(self) -> None:
        self.phase("gunicorn settings matrix: (a), (c), (b) and the htmx rush, directly, gate on")
        for worker_class, workers, threads in MATRIX:
            self.stop_web()
            label = f"{worker_class}-{workers}x{threads}"
            self.web = self.start_gunicorn(label, workers=workers, threads=threads,
                                           worker_class=worker_class)
            a = self.wrk(f"[{label}] (a) /healthz", self.web.url, "healthz", "ok", [], None)
            c = self.wrk(f"[{label}] (c) full event", self.web.url, "htmx", "full",
                         [self.events["full"]], self.htmx_creds)
            b = self.wrk(f"[{label}] (b) winning", self.web.url, "htmx", "win",
                         [self.new_event(f"matrix {label}")], self.htmx_creds)
            rush = self.rush("htmx", "direct", setting=label)
            self.results["matrix"].append({"setting": label, "a": a.as_dict(), "b": b.as_dict(),
                                           "c": c.as_dict(), "rush": rush})

    # --- checks and report -------------------------------------------------------

    def add_checks(self, scope: str, checks: list[invariants.Check]) -> None:
        for check in checks:
            self.results["checks"].append({"scope": scope, "name": check.name, "ok": check.ok,
                                           "detail": check.detail})
            if not check.ok:
                self.say(f"   FAIL {scope}: {check}")
        passed = sum(c.ok for c in checks)
        self.say(f"   {scope}: {passed}/{len(checks)} invariant checks passed")

    def settle_activity(self) -> None:
        """Rejections the servers have not batched into SQL yet (webapp/reports/journal.py)."""
        from webapp.reports.journal import settle

        with self.app.app_context():
            written = settle()
        if written:
            self.say(f"   {written} rejected attempts were still on their way to activity_log")

    def final_checks(self) -> None:
        self.phase("invariants after every run (SQL), Redis against SQL")
        self.settle_activity()
        with self.engine.connect() as conn:
            for events, runs in sorted(self.wrk_attempts.items()):
                low = sum(r for r, _ in runs)
                high = low + sum(c for _, c in runs)  # requests still in flight when wrk stopped
                logged = conn.execute(text(
                    "SELECT count(*) FROM activity_log WHERE event_id = ANY(:e)"
                    " AND action = 'register'"), {"e": list(events)}).scalar()
                checks = [c for event_id in events for c in invariants.event_checks(conn, event_id)]
                checks.append(invariants.Check(
                    "one activity row per attempt", low <= logged <= high,
                    f"{logged} rows for {low} answered attempts (+ up to {high - low} in flight)"))
                self.add_checks(f"wrk event(s) {','.join(map(str, events))}", checks)
        self.results["timelines"] = {
            f"({r['key']}) {r['where']}": self.timeline(r["event_id"])
            for r in self.results["ratios"] if r["key"] in ("b", "d")}
        env = self.config.env()
        proc = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "seats",
                               "reconcile"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        (self.run_dir / "reconcile.txt").write_text(proc.stdout + proc.stderr)
        self.add_checks("redis", invariants.reconcile_checks(proc.stdout, proc.returncode))
        with self.engine.connect() as conn:
            if invariants.has_outbox(conn):
                rows = conn.execute(text("SELECT kind, status, count(*) FROM outbox"
                                         " GROUP BY kind, status ORDER BY 1, 2")).all()
                self.results["outbox"] = [list(r) for r in rows]

    def timeline(self, event_id: int, bucket: float = 0.5) -> list[tuple[float, float]]:
        """Confirmations per second over the run, as SQL committed them."""
        with self.engine.connect() as conn:
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

    def write_report(self) -> None:
        from loadtests.report import write

        (self.run_dir / "results.json").write_text(json.dumps(self.results, indent=2))
        write(self.run_dir, self.results)

    def teardown(self) -> None:
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception as exc:  # keep stopping the others
                self.say(f"could not stop {service.name}: {exc}")
        self.services.clear()
        if getattr(self, "engine", None) is not None:
            self.engine.dispose()
        if getattr(self, "app", None) is not None:
            from webapp.extensions import db

            with self.app.app_context():
                db.engine.dispose()
        if self.resources:
            try:
                self.resources.release(self.args.keep_db)
            except Exception as exc:
                self.say(f"could not release the database / Redis index: {exc}")
        self.say("everything the bench started is stopped")


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def locust_totals(prefix: Path) -> dict:
    import csv

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


def machine_info() -> dict:
    import psutil

    def version(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None

    rev = version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                           capture_output=True, text=True).stdout.strip() != ""
    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "git": f"{rev}{' (with uncommitted changes)' if dirty else ''}",
            "postgres": version(["psql", "--version"]),
            "redis": version(["redis-server", "--version"]),
            "nginx": version(["nginx", "-v"]), "wrk": version(["wrk", "--version"]),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)

    def _terminate(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        return bench.run()
    except KeyboardInterrupt:
        bench.say("interrupted: stopping everything")
        return 130
    except Exception as exc:
        bench.say(f"bench failed: {type(exc).__name__}: {exc}")
        import traceback

        with bench.log_path.open("a") as f:
            traceback.print_exc(file=f)
        return 1
    finally:
        bench.teardown()


if __name__ == "__main__":
    sys.exit(main())

