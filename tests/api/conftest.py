"""Fixtures for the JSON API: a client that speaks JSON with or without a bearer token."""

from __future__ import annotations

import pytest

from tests.support.clients import Api


@pytest.fixture
def api(app) -> Api:
    return Api(app)
