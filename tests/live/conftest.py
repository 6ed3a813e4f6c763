"""A real gunicorn for the live tests: started once per backend per module, stopped after.

The server is module-scoped while `app` (which empties SQL and Redis) stays
function-scoped: each test still starts from clean data, and the server keeps
no state of its own between tests that SQL or Redis would not rebuild.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live import LiveServer, LiveServers


@pytest.fixture(scope="module")
def live_server_factory(database_url, redis_url, tmp_path_factory) -> Iterator:
    """live_server_factory(app="wsgi:app", **extra_env) -> LiveServer on this module's backend.

    For the control run: live_server_factory(app=tests.support.live.CONTROL_APP).
    One server runs at a time: asking for another variant stops the current one
    (tests/support/live.py, LiveServers, says why).
    """
    servers = LiveServers(database_url, redis_url, lambda: tmp_path_factory.mktemp("gunicorn"))
    yield servers.get
    servers.stop()


@pytest.fixture
def live_server(live_server_factory) -> LiveServer:
    """The production configuration (guards on): started once per module and backend,
    unless a test in between asked the factory for another variant."""
    return live_server_factory()
