"""A real SMTP server (aiosmtpd) that can be told how to answer, and a real worker process."""

from __future__ import annotations

import pytest

from tests.support.worker_fixtures import mail_config, smtp, start_worker  # noqa: F401


@pytest.fixture
def app_config(mail_config) -> dict:  # noqa: F811 (the imported fixture)
    return mail_config
