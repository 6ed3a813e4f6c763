"""ASVS finding "flask seed creates the demo organizer with the README's password against any
database": a production database gets a random demo password, shown once."""

from __future__ import annotations

import re

import pytest

from tests.support.clients import Client


@pytest.fixture
def app_config():
    return {"TURNOUT_ENV": "production"}


def test_production_seed_never_uses_the_public_demo_password(app):
    from webapp.cli import DEMO_PASSWORD

    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    assert DEMO_PASSWORD not in result.output
    password = re.search(r"Demo accounts \(password (\S+), shown once", result.output).group(1)
    client = Client(app.test_client())
    assert client.login("organizer@turnout.test", DEMO_PASSWORD).status_code == 422
    assert client.login("organizer@turnout.test", password).status_code == 303
