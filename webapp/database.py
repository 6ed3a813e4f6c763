"""Engine set-up per database, and the short write transactions services use."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import Connection, Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from webapp.extensions import db

_IMMEDIATE = "turnout_write"
_ON_COMMIT = "turnout_on_commit"
_AUTOCOMMIT = "turnout_autocommit"

log = logging.getLogger("turnout.database")


class CommitUnknown(Exception):
    """The connection broke while the server was committing: the change may or may not
    be saved. Whoever wrote it must find out before telling anyone "nothing was saved"."""


def configure(app: Flask) -> None:
    """Bounded waits on PostgreSQL, set before the engine is made: no statement waits
    longer than DB_LOCK_TIMEOUT_MS for a lock or runs longer than DB_STATEMENT_TIMEOUT_MS,
    and a connection to a dead server fails after DB_CONNECT_TIMEOUT_SECONDS. Past them
    the person is answered 503 busy (webapp/http_errors.py) instead of waiting with a
    thread of ours held (one held event row once stopped every event for 67 s)."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(
        app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args = options["connect_args"] = dict(options.get("connect_args") or {})
    connect_args.setdefault("connect_timeout", app.config["DB_CONNECT_TIMEOUT_SECONDS"])
    connect_args.setdefault("options", " ".join([
        f"-c lock_timeout={int(app.config['DB_LOCK_TIMEOUT_MS'])}",
        f"-c statement_timeout={int(app.config['DB_STATEMENT_TIMEOUT_MS'])}",
    ]))


def unavailable(exc: BaseException) -> bool:
    """Whether a database error means "could not answer in time": no connection, a lock or
    statement timeout, an exhausted pool, a locked SQLite file. Not a broken constraint."""
    if isinstance(exc, sa_exc.TimeoutError):  # no connection free in the pool in time
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
        return True
    if not isinstance(exc, sa_exc.OperationalError):
        return False
    state = _sqlstate(exc)
    if state is not None:  # PostgreSQL: a lock or statement timeout, the link, a shutdown
        return state in _TIMEOUTS or _connection_state(state)
    return "locked" in str(exc.orig) or "busy" in str(exc.orig) or not _is_sqlite(exc)


_TIMEOUTS = {"55P03", "57014"}  # lock_not_available (lock_timeout), query_canceled


def lock_timed_out(exc: BaseException) -> bool:
    """A wait for a row lock gave up (PostgreSQL's lock_timeout)."""
    return isinstance(exc, sa_exc.DBAPIError) and _sqlstate(exc) == "55P03"


def _sqlstate(exc: sa_exc.DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _connection_state(state: str) -> bool:
    """SQLSTATE class 08 (connection exception) or the server shutting down (57P0x)."""
    return state.startswith("08") or state in {"57P01", "57P02", "57P03"}


def _is_sqlite(exc: sa_exc.DBAPIError) -> bool:
    return type(exc.orig).__module__.startswith("sqlite3")


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
    with Session(bind=engine, expire_on_commit=False) as session:
        transaction = session.begin()
        session.info[_ON_COMMIT] = callbacks
        try:
            yield session
            session.flush()  # a failing statement is a known failure; only COMMIT is not
        except BaseException:
            transaction.rollback()
            raise
        try:
            transaction.commit()
        except sa_exc.DBAPIError as exc:
            if _lost_in_commit(exc):
                raise CommitUnknown(str(exc)) from exc
            raise
    # The request's own session may hold an older snapshot (SQLite) and loaded
    # objects; end its read transaction so the page shows what was just committed.
    db.session.rollback()
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the commit stands; whatever a callback does must be repairable
            log.exception("after-commit callback failed", extra={"callback": repr(callback)})


def _lost_in_commit(exc: sa_exc.DBAPIError) -> bool:
    """A COMMIT that failed because the connection went: the server may have committed.
    A timeout or a broken constraint is a known failure; SQLite commits in this process,
    so a failed COMMIT there did not happen."""
    if _is_sqlite(exc):
        return False
    if exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    if state is None:  # the driver gave up on the link before the server said anything
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return _connection_state(state)


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
        try:
            yield connection
        except sa_exc.DBAPIError as exc:
            # A statement that is its own transaction may have committed as the link broke.
            if _lost_in_commit(exc):
                raise CommitUnknown(str(exc)) from exc
            raise


@contextmanager
def read_session() -> Iterator[Session]:
    """A fresh read snapshot, e.g. to rebuild Redis from what SQL holds right now."""
    db.session.rollback()  # one connection per request at a time, as in write_session
    with Session(bind=db.engine, expire_on_commit=False) as session, session.begin():
        yield session
