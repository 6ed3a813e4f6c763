"""Outages on purpose: a Redis killed and started again empty, a PostgreSQL database that
refuses every connection for a while, a slow SMTP server, and the process trees they hit."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from dataclasses import dataclass

import psutil
from sqlalchemy import text

from tests.support.databases import _admin_engine
from tests.support.mail import SmtpCatcher
from tests.support.redisdb import start_private_redis


@dataclass
class PacedSmtp(SmtpCatcher):
    """SmtpCatcher whose every DATA waits `pace` seconds first: a burst takes a while."""

    pace: float = 0.0

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        if self.pace:
            await asyncio.sleep(self.pace)
        return await super().handle_DATA(server, session, envelope)


class KillableRedis:
    """A private redis-server on a fixed port that a test kills (SIGKILL, nothing saved)
    and starts again, empty, on the same port."""

    def __init__(self) -> None:
        self.server = start_private_redis()
        self.port = self.server.port
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        self.server.proc.kill()
        self.server.proc.wait(timeout=10)
        shutil.rmtree(self.server.dir, ignore_errors=True)

    def restart(self) -> None:
        self.server = start_private_redis(self.port)

    def stop(self) -> None:
        self.server.stop()


def close_database(database_url: str) -> None:
    """PostgreSQL as if down, for this database only: no new connection is accepted and
    every open one is ended (pg_terminate_backend)."""
    url, admin = _admin_engine(database_url)
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{url.database}" WITH ALLOW_CONNECTIONS false'))
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :name AND pid <> pg_backend_pid()"),
                     {"name": url.database})
    admin.dispose()


def open_database(database_url: str) -> None:
    url, admin = _admin_engine(database_url)
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{url.database}" WITH ALLOW_CONNECTIONS true'))
    admin.dispose()


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants, as they are now."""
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def still_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of `processes` that still run (a zombie waiting for its parent has ended)."""
    running = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
    return running


def worker_child(supervisor_pid: int, role: str) -> psutil.Process | None:
    """The supervisor's child `python -m workers <role>` (rq or upkeep), if it runs."""
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(supervisor_pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.cmdline()[-3:] == ["-m", "workers", role]:
                    return child
    return None
