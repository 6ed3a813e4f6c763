"""Engine set-up per database, and the short write transactions services use."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

from webapp.extensions import db

_IMMEDIATE = "turnout_write"
_ON_COMMIT = "turnout_on_commit"
_AUTOCOMMIT = "turnout_autocommit"

log = logging.getLogger("turnout.database")


def init_app(app: Flask) -> None:
    """Tune SQLite for many concurrent writers; PostgreSQL needs nothing extra."""
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    # pysqlite's own BEGIN handling is disabled so that we can say BEGIN IMMEDIATE:
    # a write transaction that starts with a read would otherwise fail with
    # "database is locked" at once instead of waiting for busy_timeout.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - driver callback
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get(_IMMEDIATE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _write_engine(engine: Engine) -> Engine:
    """The engine with the option that makes SQLite BEGIN IMMEDIATE (made once per engine)."""
    writer = engine.__dict__.get(_IMMEDIATE)
    if writer is None:
        writer = engine.__dict__[_IMMEDIATE] = engine.execution_options(**{_IMMEDIATE: True})
    return writer


@contextmanager
def write_session() -> Iterator[Session]:
    """One write transaction on its own connection: commit on success, roll back on error.

    Services own their transaction through this, independent of whatever the
    request's session has read so far (its snapshot may be old on SQLite).
    """
    # Hand the request session's connection back first: a request then holds
    # one connection at a time, and on SQLite no old read snapshot stays open.
    db.session.rollback()
    engine = _write_engine(db.engine)
    callbacks: list[Callable[[], None]] = []
    with Session(bind=engine, expire_on_commit=False) as session, session.begin():
        session.info[_ON_COMMIT] = callbacks
        yield session
    # The request's own session may hold an older snapshot (SQLite) and loaded
    # objects; end its read transaction so the page shows what was just committed.
    db.session.rollback()
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the commit stands; whatever a callback does must be repairable
            log.exception("after-commit callback failed", extra={"callback": repr(callback)})


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the write_session() transaction has committed (never on rollback).

    For side effects outside the database, such as enqueueing a job for an
    outbox row: they must not happen for a transaction that rolls back, and a
    failure in them must not undo the commit.
    """
    session.info[_ON_COMMIT].append(callback)


@contextmanager
def autocommit_connection() -> Iterator[Connection]:
    """A connection on which every statement is its own transaction, committed by the
    server as the statement ends: no lock it takes waits for another round trip from
    this process (which, on a busy machine, may wait for a CPU first)."""
    db.session.rollback()  # one connection per request at a time, as in write_session
    engine = db.engine
    autocommit = engine.__dict__.get(_AUTOCOMMIT)
    if autocommit is None:
        autocommit = engine.__dict__[_AUTOCOMMIT] = engine.execution_options(
            isolation_level="AUTOCOMMIT")
    with autocommit.connect() as connection:
        yield connection


@contextmanager
def read_session() -> Iterator[Session]:
    """A fresh read snapshot, e.g. to rebuild Redis from what SQL holds right now."""
    with Session(bind=db.engine, expire_on_commit=False) as session, session.begin():
        yield session
