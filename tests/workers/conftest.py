"""The real `python -m workers` against a Redis the test may kill, the test's database and
an SMTP server that answers as told (tests/support/worker_fixtures.py)."""

from __future__ import annotations

import pytest

from tests.support.worker_fixtures import (  # noqa: F401 (fixtures)
    killable_redis,
    mail_config,
    smtp,
    start_worker,
)


@pytest.fixture
def app_config(mail_config, killable_redis) -> dict:  # noqa: F811 (imported fixtures)
    return {**mail_config, "REDIS_URL": killable_redis.url}
