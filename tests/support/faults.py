"""Fault injection: SQLAlchemy listeners a test adds and removes, a hook at a commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session


class Listeners:
    """SQLAlchemy event listeners added by one test, all removed by remove_all()."""

    def __init__(self) -> None:
        self.added: list[tuple] = []

    def add(self, target, name: str, fn) -> Callable[[], None]:
        """listen(target, name, fn) -> stop()."""
        sa_event.listen(target, name, fn)
        self.added.append((target, name, fn))

        def stop():
            if sa_event.contains(target, name, fn):
                sa_event.remove(target, name, fn)

        return stop

    def remove_all(self) -> None:
        for target, name, fn in self.added:
            if sa_event.contains(target, name, fn):
                sa_event.remove(target, name, fn)
        self.added.clear()


def _writes_registration(statement: str) -> bool:
    return "INSERT INTO REGISTRATIONS" in statement.upper()


def _autocommit(conn) -> bool:
    return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def at_registration_commit(listen: Callable, when: str, fn: Callable[[], None]
                           ) -> Callable[[], None]:
    """fn() runs at the commit ("before": it may raise to fail the commit; "after") of each
    transaction of this thread that inserted a registration, however the service wrote it:
    ORM flush or plain INSERTs in a transaction, or one statement that is its own
    transaction (autocommit: "before" is then before that statement, so raising fails it;
    "after" is after it). `listen` is Listeners.add; returns stop()."""
    inserted = threading.local()

    def before_statement(conn, _cursor, statement, *_args):
        if _writes_registration(statement):
            if not _autocommit(conn):
                inserted.yes = True
            elif when == "before":
                fn()

    def after_statement(conn, _cursor, statement, *_args):
        if when == "after" and _autocommit(conn) and _writes_registration(statement):
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


@contextmanager
def row_held(database_url: str, event_id: int) -> Iterator[None]:
    """Hold an event's row lock (PostgreSQL) from a connection of its own until the block
    ends: a stuck organizer edit, a psql session left open."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection, connection.begin():
            connection.execute(text("SELECT id FROM events WHERE id = :e FOR UPDATE"),
                               {"e": event_id})
            yield
    finally:
        engine.dispose()


def hold_row_for(database_url: str, event_id: int, seconds: float) -> threading.Thread:
    """row_held() for `seconds` in a thread; returns once the row is held."""
    holding = threading.Event()

    def hold() -> None:
        with row_held(database_url, event_id):
            holding.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold, daemon=True, name=f"hold-event-{event_id}")
    thread.start()
    assert holding.wait(30), "could not take the event's row lock"
    return thread
