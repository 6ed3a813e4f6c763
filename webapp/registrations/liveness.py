"""Which processes are alive: a seat hold of a dead process must not say "full" for long.

Every process that takes seat holds has an id of its own, the first part of
each hold's token, and keeps a key `turnout:alive:<id>` in Redis that expires
after ALIVE_MS unless a thread of the process renews it every ALIVE_MS / 3.
When the gate would answer "full" counting holds, it names their owners
(reserve.lua); if one of them has no key, it died with its attempt in flight
(a web worker killed mid-rush) and SQL decides instead. So a dead process's
holds turn people away for about ALIVE_MS, not for their time to live.
A process too starved to renew in time only sends its event's losers to SQL,
which answers them exactly: nothing is wrong, only slower.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid

import redis

log = logging.getLogger("turnout.liveness")

ALIVE_MS = 1500
_lock = threading.Lock()
_state: dict = {"pid": None, "id": None}


def _key(process: str) -> str:
    return f"turnout:alive:{process}"


def process_id(client: redis.Redis) -> str:
    """This process's id (a new one after a fork), its key kept alive by a thread."""
    with _lock:
        if _state["pid"] != os.getpid():
            _state["pid"], _state["id"] = os.getpid(), uuid.uuid4().hex[:16]
            _renew(client, _state["id"])
            threading.Thread(target=_keep_alive, args=(client, _state["id"], os.getpid()),
                             daemon=True, name="turnout-alive").start()
        return _state["id"]


def token(client: redis.Redis) -> str:
    """A hold token: the owner process's id, a dot, then a random part."""
    return f"{process_id(client)}.{uuid.uuid4().hex}"


def dead_owners(client: redis.Redis, owners: list[str]) -> list[str]:
    """Those of `owners` (process ids) whose key is gone; [] when Redis cannot say."""
    if not owners:
        return []
    try:
        with client.pipeline(transaction=False) as pipe:
            for owner in owners:
                pipe.exists(_key(owner))
            alive = pipe.execute()
    except redis.RedisError:
        return []
    return [owner for owner, found in zip(owners, alive, strict=True) if not found]


def _renew(client: redis.Redis, process: str) -> None:
    try:
        client.set(_key(process), "1", px=ALIVE_MS)
    except redis.RedisError as exc:  # the gate is down too; nothing relies on this then
        log.debug("liveness not renewed", extra={"error": str(exc)})


def _keep_alive(client: redis.Redis, process: str, pid: int) -> None:
    while os.getpid() == pid:
        time.sleep(ALIVE_MS / 3000)
        _renew(client, process)
