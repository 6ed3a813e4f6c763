"""Fixtures for tests of the real worker (tests/mail, tests/workers), imported by their
conftest.py: an SMTP server that answers as told, a private Redis, `python -m workers`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.mail import FAST_MAIL, WorkerProcess, start_smtp, stop_smtp, worker_env
from tests.support.outages import KillableRedis, PacedSmtp


@pytest.fixture
def smtp() -> Iterator[PacedSmtp]:
    catcher = PacedSmtp()
    try:
        controller = start_smtp(catcher)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield catcher
    finally:
        stop_smtp(catcher, controller)


@pytest.fixture
def killable_redis() -> Iterator[KillableRedis]:
    """A redis-server of the test's own, to kill and start again; stopped at the end."""
    server = KillableRedis()
    yield server
    server.stop()


@pytest.fixture
def mail_config(smtp) -> dict:
    """The app's settings for the test's SMTP server, with FAST_MAIL timings."""
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp.port, **FAST_MAIL}


@pytest.fixture
def start_worker(app, smtp, tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    """start_worker(**env) -> a running worker on the test's database, Redis and SMTP server."""
    started: list[WorkerProcess] = []

    def start(**extra: str) -> WorkerProcess:
        env = worker_env(app.config["SQLALCHEMY_DATABASE_URI"], app.config["REDIS_URL"],
                         smtp.port, tmp_path, **extra)
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
