"""Preparing a benchmark quickly: people and events straight into SQL, sessions for wrk.

A thousand sign-ups through the web would measure password hashing, not
registration. Accounts are inserted in bulk with ONE precomputed password
hash (a cheap scrypt cost, as the tests use), so that signing in through the
real /login form during the rush stays cheap too.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import Engine, insert, select, text
from werkzeug.security import generate_password_hash

from loadtests.common import DEFAULT_PASSWORD, email_of

BENCH_HASH_METHOD = "scrypt:1024:8:1"  # tests/conftest.py FAST_HASH; production keeps its default
BENCH_USER_AGENT = "turnout-bench/1"
_CHUNK = 5000


def password_hash(password: str = DEFAULT_PASSWORD) -> str:
    return generate_password_hash(password, method=BENCH_HASH_METHOD)


def create_people(engine: Engine, first: int, count: int, *, hash_: str | None = None) -> None:
    """Accounts person<first>..person<first+count-1>@bench.turnout.test, one shared hash."""
    from webapp.auth.models import User

    hash_ = hash_ or password_hash()
    now = datetime.now(UTC)
    table = User.__table__
    with engine.begin() as conn:
        for start in range(first, first + count, _CHUNK):
            stop = min(start + _CHUNK, first + count)
            conn.execute(insert(table), [
                {"email": email_of(i), "name": f"Bench Person {i}", "password_hash": hash_,
                 "is_organizer": False, "session_version": 1, "created_at": now}
                for i in range(start, stop)])


def create_organizer(engine: Engine, email: str = "organizer@bench.turnout.test") -> int:
    from webapp.auth.models import User

    with engine.begin() as conn:
        conn.execute(insert(User.__table__), [{
            "email": email, "name": "Bench Organizer", "password_hash": password_hash(),
            "is_organizer": True, "session_version": 1, "created_at": datetime.now(UTC)}])
        return conn.scalar(select(User.__table__.c.id).where(User.__table__.c.email == email))


def create_event(engine: Engine, organizer_id: int, title: str, capacity: int, *,
                 waitlist: bool = False, waitlist_capacity: int | None = None,
                 starts_in: timedelta = timedelta(days=30)) -> int:
    from webapp.events.models import Event

    starts = datetime.now(UTC).replace(microsecond=0) + starts_in
    now = datetime.now(UTC)
    table = Event.__table__
    with engine.begin() as conn:
        return conn.execute(insert(table).returning(table.c.id), [{
            "title": title, "description": "A benchmark event.", "starts_at": starts,
            "ends_at": starts + timedelta(hours=2), "location": "Bench Hall",
            "capacity": capacity, "confirmed_count": 0, "waitlist_enabled": waitlist,
            "waitlist_capacity": waitlist_capacity, "waitlisted_count": 0,
            "organizer_id": organizer_id, "created_at": now, "updated_at": now,
        }]).scalar_one()


def ids_by_email(engine: Engine, first: int, count: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT email, id FROM users WHERE email LIKE '%@bench.turnout.test'")).all()
    wanted = {email_of(i) for i in range(first, first + count)}
    return {email: user_id for email, user_id in rows if email in wanted}


@dataclass(frozen=True)
class Credentials:
    """What one signed-in browser sends: its session cookie and the page's CSRF token."""

    user_id: int
    cookie: str
    csrf: str


def browser_sessions(app, user_ids: list[int], *, remote_addr: str = "127.0.0.1",
                     user_agent: str = BENCH_USER_AGENT) -> list[Credentials]:
    """Session cookies exactly as POST /login would set them, without 1000s of requests.

    The app's own code builds each one: Flask-Login's login_user() and
    Flask-WTF's generate_csrf() in a request context, serialized by the app's
    session interface with its SECRET_KEY. The bench checks one of them
    against the live server before it relies on them.
    """
    from flask import session
    from flask_login import login_user
    from flask_wtf.csrf import generate_csrf

    from webapp.auth.models import User

    serializer = app.session_interface.get_signing_serializer(app)
    name = app.config["SESSION_COOKIE_NAME"]
    out = []
    for user_id in user_ids:
        with app.test_request_context("/login", method="POST",
                                      environ_base={"REMOTE_ADDR": remote_addr},
                                      headers={"User-Agent": user_agent}):
            session.clear()
            login_user(User(id=user_id, session_version=1))
            csrf = generate_csrf()
            out.append(Credentials(user_id, f"{name}={serializer.dumps(dict(session))}", csrf))
    return out



def open_event_page(url: str, creds: list[Credentials], event_id: int, *,
                    threads: int = 8) -> None:
    """Each person loads the event page once, as everyone in a rush has before clicking.

    That also makes the server's copy of the person (webapp/auth/directory.py),
    which a real rush finds warm too.
    """
    local = threading.local()

    def visit(c: Credentials) -> None:
        if not hasattr(local, "http"):
            local.http = requests.Session()
        page = local.http.get(f"{url}/events/{event_id}", timeout=30,
                              headers={"Cookie": c.cookie, "User-Agent": BENCH_USER_AGENT})
        if page.status_code != 200 or "Sign out" not in page.text:
            raise RuntimeError(f"event page for person {c.user_id}: {page.status_code}")

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(visit, creds):
            pass
