"""Bring the stack up: tools, database and Redis, the SMTP sink, the worker, gunicorn, nginx."""

from __future__ import annotations

import shutil

import requests

from loadtests.bench.state import Bench
from loadtests.stack import (
    ROOT,
    Nginx,
    StackConfig,
    free_port,
    open_resources,
    start_mail_sink,
    start_worker,
)


def preflight(bench: Bench) -> None:
    """wrk is needed; without nginx or the API, their runs are skipped."""
    args = bench.args
    missing = [tool for tool in ("wrk",) if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing {missing}: `apt-get install -y wrk nginx` (make bench "
                         "does this when it runs as root)")
    if shutil.which("nginx") is None and not args.no_nginx:
        bench.say("nginx not installed: skipping the runs through nginx")
        args.no_nginx = True
    bench.has_api = (ROOT / "webapp" / "api").is_dir() and not args.no_api
    if not bench.has_api:
        args.no_api = True


def prepare_resources(bench: Bench) -> None:
    """A fresh PostgreSQL database (or BENCH_DATABASE_URL) and a Redis index of our own."""
    bench.phase("database and Redis")
    database_url, redis_url, created = open_resources(bench.resources,
                                                      keep_database=bench.args.keep_db)
    bench.say(f"database {database_url.rsplit('/', 1)[-1]} ({'created' if created else 'given'})"
              f", redis {redis_url}")
    bench.config = StackConfig(bench.run_dir, database_url, redis_url)


def start_stack(bench: Bench) -> None:
    """The SMTP sink, the worker, gunicorn with the gate on, nginx in front of it."""
    bench.phase("starting the stack")
    bench.services.append(start_mail_sink(bench.config))
    bench.worker = start_worker(bench.config)
    bench.services.append(bench.worker)
    bench.web_port = free_port()
    bench.web = bench.start_gunicorn("gate-on")
    bench.nginx = None
    if bench.args.no_nginx:
        return
    bench.nginx = Nginx(bench.config, free_port(), bench.web_port)
    bench.services.append(bench.nginx)
    bench.nginx.wait_ready()
    answer = requests.get(bench.nginx.url + "/healthz", timeout=5)
    static = requests.get(bench.nginx.url + "/static/favicon.svg", timeout=5)
    if answer.text != "ok" or static.status_code != 200:
        raise RuntimeError("nginx does not pass requests on / serve static files")
    bench.say(f"nginx {bench.nginx.url} -> gunicorn :{bench.web_port} (keep-alive upstream),"
              f" static files from disk")
