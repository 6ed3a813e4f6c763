"""A real SMTP server (aiosmtpd) that can be told how to answer, and a real worker process."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.mail import (
    FAST_MAIL,
    SmtpCatcher,
    WorkerProcess,
    start_smtp,
    stop_smtp,
    worker_env,
)


@pytest.fixture
def smtp() -> Iterator[SmtpCatcher]:
    catcher = SmtpCatcher()
    try:
        controller = start_smtp(catcher)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield catcher
    finally:
        stop_smtp(catcher, controller)


@pytest.fixture
def app_config(smtp) -> dict:
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
