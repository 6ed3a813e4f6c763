"""The production-like stack `make bench` brings up, and takes down again, on this machine.

gunicorn (deploy/gunicorn.conf.py) · nginx (Debian's, a generated site after
deploy/nginx-turnout.conf) · the worker (`python -m workers`) · an SMTP sink
for its emails · a fresh PostgreSQL database on the local server · a Redis
database index of our own. Every process is started in its own session and
stopped by its pid (SIGTERM, then SIGKILL for whatever of its tree is left).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
# Settings of the developer's shell that would change what the servers do.
_INHERITED_OUT = re.compile(r"^(TURNOUT_|SEAT_|GUNICORN_|WEB_CONCURRENCY$|PORT$|RATELIMIT_|"
                            r"DATABASE_URL$|REDIS_URL$|SECRET_KEY$|PASSWORD_HASH_METHOD$|"
                            r"MAIL_|PROXY_FIX_)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Service:
    """One process tree we started, with its log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str],
                 cwd: Path = ROOT) -> None:
        self.name, self.argv, self.log_path = name, argv, log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 20, sig: int = signal.SIGTERM) -> None:
        family = self.processes()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        _gone, left = psutil.wait_procs(family, timeout=5)
        for process in left:  # only processes of this very tree, by pid
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self._log.close()


@dataclass
class Resources:
    """The database and Redis index of one bench run."""

    database_url: str
    redis_url: str
    created_database: bool = False
    redis_claim: tuple[str, int] | None = None

    def release(self, keep_database: bool) -> None:
        if self.redis_claim:
            base, index = self.redis_claim
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(f"{base}/{index}").flushdb()
                redis.Redis.from_url(f"{base}/0").delete(f"turnout:test-claim:{index}")
        if self.created_database and not keep_database:
            drop_database(self.database_url)


def postgres_server_url() -> str:
    return "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def create_database(server_url: str) -> str:
    url = make_url(server_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"turnout_bench_{os.getpid()}"
    with admin.connect() as conn:
        for (stale,) in conn.execute(text(
                "SELECT datname FROM pg_database WHERE datname LIKE 'turnout\\_bench\\_%'")):
            pid = stale.rsplit("_", 1)[-1]
            if pid.isdigit() and not psutil.pid_exists(int(pid)):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)'))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def claim_redis(explicit: str | None) -> tuple[str, tuple[str, int] | None]:
    """REDIS_URL as given, else a database index of the local Redis nobody else uses.

    Claims use the same keys as the test suite's (tests/conftest.py), so a bench
    and test runs on one Redis never flush each other.
    """
    if explicit:
        return explicit, None
    base = "redis://127.0.0.1:6379"
    claims = redis.Redis.from_url(f"{base}/0")
    for index in range(1, 16):
        if claims.set(f"turnout:test-claim:{index}", f"bench-{os.getpid()}", nx=True,
                      ex=3 * 3600):
            redis.Redis.from_url(f"{base}/{index}").flushdb()
            return f"{base}/{index}", (base, index)
    raise RuntimeError("all Redis databases 1-15 are claimed by test runs; set REDIS_URL")


def upgrade_schema(database_url: str, redis_url: str) -> None:
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url,
                      "SECRET_KEY": "schema-only"})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


@dataclass
class StackConfig:
    run_dir: Path
    database_url: str
    redis_url: str
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    mail_port: int = 0

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not _INHERITED_OUT.match(k)}
        instance = self.run_dir / "instance"
        instance.mkdir(parents=True, exist_ok=True)
        env.update({
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": self.secret_key,
            "TURNOUT_INSTANCE": str(instance),
            "XDG_RUNTIME_DIR": str(instance),
            "RATELIMIT_ENABLED": "0",  # thousands of sign-ins from one address
            "PROXY_FIX_TRUSTED_HOPS": "1",  # production: exactly one proxy (nginx)
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(self.mail_port),
            "PUBLIC_URL": "http://127.0.0.1",
            # Only the bench's own `flask seats reconcile` may repair Redis, so that
            # any drift a scenario caused is seen, not silently fixed by the worker.
            "RECONCILE_INTERVAL_SECONDS": "86400",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(extra)
        return env


class Gunicorn(Service):
    def __init__(self, config: StackConfig, port: int, *, label: str, workers: int | None = None,
                 threads: int | None = None, extra_env: dict[str, str] | None = None,
                 worker_class: str | None = None,
                 conf_file: str = "deploy/gunicorn.conf.py") -> None:
        env = config.env(**(extra_env or {}))
        if workers:
            env["WEB_CONCURRENCY"] = str(workers)
        if threads:
            env["GUNICORN_THREADS"] = str(threads)
        argv = [sys.executable, "-m", "gunicorn", "-c", conf_file, "--bind", f"127.0.0.1:{port}"]
        if worker_class:
            argv += ["--worker-class", worker_class]
        argv.append("wsgi:app")
        self.port, self.label = port, label
        self.url = f"http://127.0.0.1:{port}"
        # deploy/gunicorn.conf.py: WEB_CONCURRENCY, else 2 per core
        self.workers = workers or int(env.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1)))
        super().__init__(f"gunicorn[{label}]", argv,
                         config.run_dir / f"gunicorn-{label}.log", env)

    def wait_ready(self, timeout: float = 60) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise RuntimeError(f"gunicorn exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer in {timeout} s:\n{self.tail()}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).text == "ok":
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        while self.log_text().count("Booting worker") < self.workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all gunicorn workers booted:\n{self.tail()}")
            time.sleep(0.1)
        session = requests.Session()
        for _ in range(self.workers * 20):  # every worker imports and renders once
            session.get(self.url + "/login", timeout=10)


def nginx_conf(run_dir: Path, listen_port: int, upstream_port: int) -> Path:
    """A site like deploy/nginx-turnout.conf, without TLS, on loopback, files under run_dir."""
    temp = run_dir / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (temp / sub).mkdir(parents=True, exist_ok=True)
        (temp / sub).chmod(0o777)  # nginx workers run as an unprivileged user
    snippet = (ROOT / "deploy" / "nginx-turnout-proxy.conf").read_text()
    (temp / "turnout-proxy.conf").write_text(snippet)
    conf = temp / "nginx.conf"
    conf.write_text(f"""# Generated by loadtests/bench.py after deploy/nginx-turnout.conf (no TLS).
worker_processes auto;
pid {temp}/nginx.pid;
error_log {temp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    server_tokens off;
    access_log {temp}/access.log combined buffer=256k flush=2s;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;

    upstream turnout_app {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
        keepalive_requests 10000;
        keepalive_timeout 4s;
    }}

    server {{
        listen 127.0.0.1:{listen_port} backlog=4096;
        client_max_body_size 64k;
        client_body_timeout 10s;
        keepalive_timeout 30s;
        keepalive_requests 10000;

        location /static/ {{
            alias {ROOT}/webapp/static/;
            expires 7d;
            add_header Cache-Control "public, immutable";
            access_log off;
        }}
        location / {{
            proxy_pass http://turnout_app;
            include {temp}/turnout-proxy.conf;
        }}
    }}
}}
""")
    return conf


class Nginx(Service):
    def __init__(self, config: StackConfig, listen_port: int, upstream_port: int) -> None:
        conf = nginx_conf(config.run_dir, listen_port, upstream_port)
        self.port = listen_port
        self.url = f"http://127.0.0.1:{listen_port}"
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        super().__init__("nginx", [binary, "-e", str(conf.parent / "error.log"), "-c", str(conf),
                                   "-g", "daemon off;"],
                         config.run_dir / "nginx.log", config.env())

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start:\n{self.tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 20, sig: int = signal.SIGQUIT) -> None:
        super().stop(timeout, sig)  # SIGQUIT: graceful shutdown


def start_mail_sink(config: StackConfig) -> Service:
    config.mail_port = free_port()
    sink = Service("smtp-sink", [sys.executable, "-m", "aiosmtpd", "-n", "-l",
                                 f"127.0.0.1:{config.mail_port}", "-c",
                                 "aiosmtpd.handlers.Sink"],
                   config.run_dir / "smtp-sink.log", config.env())
    deadline = time.monotonic() + 20
    while not port_open("127.0.0.1", config.mail_port):
        if not sink.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"SMTP sink did not start:\n{sink.tail()}")
        time.sleep(0.05)
    return sink


def start_worker(config: StackConfig) -> Service:
    return Service("worker", [sys.executable, "-m", "workers"],
                   config.run_dir / "worker.log", config.env())
