"""The fault kinds: what each does to the stack, when in a rush it strikes, when it is over.

Each inject() returns when the outage it caused is over (the server is back, the
supervisor restarted the worker), so the fault's record says how long it lasted.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from loadtests.chaos.rig import WEB_RESTART_SECONDS, Rig
from loadtests.chaos.servers import KillableRedis
from tests.support.processes import ROOT, wait_until


@dataclass
class FaultRecord:
    kind: str
    started: float
    ended: float
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    name: str
    title: str
    what: str  # for the report
    inject: Callable[[Rig, random.Random, dict], dict]
    moment: tuple[float, float] = (0.02, 0.4)  # when, as a share of the rush window
    wipes_redis: bool = False
    before_rush: bool = False


def kill_one_web_worker(rig: Rig, rng: random.Random, _options: dict) -> dict:
    before = set(rig.web_workers_pids())
    victim = rig.kill_web_worker(rng)
    wait_until(lambda: len(set(rig.web_workers_pids()) - before) >= 1
               and len(rig.web_workers_pids()) >= rig.web_workers, 60,
               "gunicorn to replace its killed worker")
    return {"killed_pid": victim}


def kill_all_web(rig: Rig, _rng: random.Random, _options: dict) -> dict:
    rig.kill_web()
    time.sleep(WEB_RESTART_SECONDS)  # the supervisor's RestartSec
    rig.start_web()
    return {"restarted_as": rig.web.label}


def kill_worker(rig: Rig, _rng: random.Random, _options: dict) -> dict:
    killed = rig.supervisor.kill()
    restart = wait_until(lambda: rig.supervisor.restarted_since(killed - 0.5), 60,
                         "the supervisor to restart the worker")
    return {"restarted_after_s": round(restart.restarted_at - killed, 2)}


def restart_redis_empty(rig: Rig, rng: random.Random, _options: dict) -> dict:
    port = rig.redis.port
    rig.redis.kill()
    down = rng.uniform(1.0, 3.0)
    time.sleep(down)
    rig.redis = KillableRedis(port)
    return {"down_s": round(down, 2)}


def flush_redis(rig: Rig, _rng: random.Random, _options: dict) -> dict:
    client = redis.Redis.from_url(rig.redis.url)
    try:
        client.flushall()
    finally:
        client.close()
    return {}


def stop_postgres(rig: Rig, rng: random.Random, options: dict) -> dict:
    rig.postgres.stop("immediate")
    down = rng.uniform(*options.get("pg_down", (3.0, 6.0)))
    time.sleep(down)
    rig.postgres.start()
    return {"down_s": round(down, 2)}


def smtp_down(rig: Rig, _rng: random.Random, options: dict) -> dict:
    rig.sink_server.off()
    time.sleep(options["smtp_down"])
    rig.sink_server.on()
    return {"down_s": options["smtp_down"]}


def dead_hold(rig: Rig, _rng: random.Random, options: dict) -> dict:
    """A process reserves a seat for the person through the gate's own reserve() and exits
    before any SQL: its hold outlives the attempt that made it."""
    event_id, user_id = options["dead_hold"]
    proc = subprocess.run([sys.executable, "-m", "loadtests.chaos.deadhold", str(event_id),
                           str(user_id), uuid.uuid4().hex], cwd=ROOT, env=rig.env,
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"dead hold: {proc.stdout}{proc.stderr}")
    return {"event_id": event_id, "user_id": user_id, "gate": proc.stdout.strip()}


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("web1", "kill -9 one web worker",
          "SIGKILL to one gunicorn worker during the rush's first burst (while it has "
          "requests in flight); the master forks a new one.",
          kill_one_web_worker, moment=(0.0, 0.12)),
    Fault("web_all", "kill -9 all web processes",
          f"SIGKILL to the gunicorn master and every worker; restarted after "
          f"{WEB_RESTART_SECONDS:.0f} s (systemd RestartSec).", kill_all_web),
    Fault("worker", "kill -9 the RQ worker",
          "SIGKILL to `python -m workers` (its process group) while the rush's emails go "
          "out; the harness restarts it as systemd would, nothing else.", kill_worker,
          moment=(0.05, 0.25)),
    Fault("redis_restart", "Redis killed, restarted empty",
          "SIGKILL to redis-server, a new empty one on the same port 1-3 s later.",
          restart_redis_empty, wipes_redis=True),
    Fault("redis_flush", "Redis FLUSHALL", "FLUSHALL mid-rush: gate, queue, journal gone.",
          flush_redis, wipes_redis=True),
    Fault("pg_stop", "PostgreSQL stopped",
          "`pg_ctl stop -m immediate` mid-rush, started again 3-6 s later.", stop_postgres),
    Fault("smtp_down", "SMTP down",
          "the SMTP sink stops listening (connections refused) for the set time, "
          "while the rush's emails go out.", smtp_down, moment=(0.0, 0.15)),
    Fault("dead_hold", "dead seat hold",
          "a process calls SeatGate.reserve() for a person and exits; then that person "
          "and the rush register.", dead_hold, before_rush=True),
)}
CHEAP = ("web1", "redis_flush", "dead_hold")


def inject(fault: Fault, rig: Rig, rng: random.Random, options: dict) -> FaultRecord:
    started = time.time()
    try:
        detail = fault.inject(rig, rng, options)
    except Exception as exc:  # the campaign reports it and carries on
        detail = {"error": f"{type(exc).__name__}: {exc}"}
    return FaultRecord(fault.name, started, time.time(), detail)


