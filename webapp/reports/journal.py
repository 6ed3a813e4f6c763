"""Attempts that changed nothing: recorded at once, written to SQL in batches.

A rejection (event full, already registered) changes nothing, yet in a rush it
is the commonest write: 900 of 1,000 attempts on 100 seats. As its own SQL
transaction it was half the cost of the request. Now the request keeps the
entry twice and returns:

1. in this process's memory, from which a thread writes a batch to
   ``activity_log`` every ACTIVITY_FLUSH_MS (one INSERT per batch);
2. in this process's Redis stream ``turnout:activity:<random token>`` (one XADD),
   deleted once the batch has committed: if the process dies first, the
   upkeep loop writes what it left (entries older than ACTIVITY_ORPHAN_MS).

So an entry is lost only if Redis loses it *and* the process dies before its
next batch. Each row carries a journal id, "<process token>/<counter>", unique, and
every writer inserts with ON CONFLICT DO NOTHING: any process may write any
entry, none is written twice. Changes (confirmed, waitlisted, cancelled,
promoted) are still written in the transaction that makes them; occurred_at is
the attempt's time, not the batch's. An entry whose event or person no longer
exists is dropped with a log line, so it cannot block the rest.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import secrets
import threading
from datetime import datetime

import redis
from flask import Flask, current_app
from sqlalchemy.exc import DataError, IntegrityError

from webapp.database import write_session
from webapp.extensions import redis_store
from webapp.reports import activity

log = logging.getLogger("turnout.activity")

STREAM_PREFIX = "turnout:activity:"


def record_attempt(**fields) -> None:
    """The activity entry of an attempt that changed nothing (a rejection, a failure):
    through the journal, or in its own transaction when the journal is off."""
    if current_app.config["ACTIVITY_JOURNAL"]:
        append(**fields)
    else:
        activity.record_alone(**fields)


def append(**fields) -> None:
    """Record an attempt that changed nothing (call within an app context)."""
    journal = Journal.of_process()
    row = activity.entry(**fields, journal_id=journal.next_id())
    saved = {k: "" if v is None else str(v) for k, v in row.items()}
    saved["occurred_at"] = row["occurred_at"].isoformat()
    try:
        entry = redis_store.client.xadd(journal.stream, saved)
    except redis.RedisError as exc:  # memory alone until the batch commits
        log.warning("activity journal: Redis unavailable", extra={"error": str(exc)})
        entry = None
    journal.add(row, entry)
    if current_app.config["ACTIVITY_DRAIN_THREAD"]:
        Flusher.ensure(current_app._get_current_object())


class Journal:
    """This process's entries not yet in SQL (one per process, rebuilt after a fork)."""

    _lock = threading.Lock()
    _current: Journal | None = None

    def __init__(self) -> None:
        self.pid = os.getpid()
        # Entry ids are unique within one stream only (two processes can both write
        # "1795265316899-0"), and Redis reuses them after losing a stream: journal
        # ids are this token and a counter (next_id).
        self.token = secrets.token_hex(6)
        self.stream = f"{STREAM_PREFIX}{self.token}"
        self.rows: list[dict] = []
        self.entries: list[str] = []  # their stream entry ids, to delete once written
        self.sequence = itertools.count(1)
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.flushing = threading.Lock()  # one batch at a time, in order

    @classmethod
    def reset(cls) -> None:
        """Forget this process's unwritten rows (tests, between apps on a cleaned database)."""
        with cls._lock:
            cls._current = None

    @classmethod
    def of_process(cls) -> Journal:
        journal = cls._current
        if journal is None or journal.pid != os.getpid():
            with cls._lock:
                journal = cls._current
                if journal is None or journal.pid != os.getpid():
                    journal = cls._current = cls()
        return journal

    def next_id(self) -> str:
        """A journal id no other attempt has: this process's token and a counter.

        Not the stream entry id: Redis hands those out again after it lost the
        stream (same millisecond, or its clock stepped back)."""
        return f"{self.token}/{next(self.sequence)}"

    def add(self, row: dict, entry: str | None) -> None:
        with self.arrived:
            self.rows.append(row)
            if entry:
                self.entries.append(entry)
            self.arrived.notify()

    def wait(self, timeout: float) -> None:
        with self.arrived:
            if not self.rows:
                self.arrived.wait(timeout)

    def flush(self) -> int:
        """Write every waiting row in one batch, then forget them here and in Redis.

        If the database fails, the rows stay for the next flush (and the error propagates).
        """
        with self.flushing:
            with self.lock:
                batch, self.rows = self.rows, []
                ids, self.entries = self.entries, []
            if not batch:
                return 0
            try:
                write_rows(batch)
            except Exception:
                with self.lock:
                    self.rows[:0] = batch
                    self.entries[:0] = ids
                raise
            if ids:  # if this fails, a later writer skips them: journal_id is unique
                with contextlib.suppress(redis.RedisError):
                    redis_store.client.xdel(self.stream, *ids)
            return len(batch)


def write_rows(rows: list[dict]) -> None:
    """One INSERT for the batch, skipping entries already written. If the database refuses
    the batch (an event or person deleted since, a value it cannot store), rows go one by
    one and the refused ones are dropped. Any other error propagates."""
    try:
        with write_session() as session:
            activity.write(session, rows)
        return
    except (IntegrityError, DataError):
        pass
    for row in rows:
        try:
            with write_session() as session:
                activity.write(session, [row])
        except (IntegrityError, DataError) as exc:
            log.error("activity entry dropped: the database refuses it",
                      extra={**row, "occurred_at": str(row["occurred_at"]),
                             "error": str(exc.orig)})


def write_streams(older_than_ms: int | None = None) -> int:
    """Write entries from every process's stream (all, or those older than a limit).

    The upkeep loop uses it for processes that died before their batch; tests and the
    bench to see everything now. Safe while the owners write too.
    """
    client = redis_store.client
    written = 0
    max_id = "+"
    if older_than_ms is not None:
        seconds, micros = client.time()
        max_id = str(int(seconds) * 1000 + int(micros) // 1000 - older_than_ms)
    for stream in client.scan_iter(match=f"{STREAM_PREFIX}*", count=500, _type="stream"):
        while True:
            entries = client.xrange(stream, "-", max_id, count=1000)
            if not entries:
                break
            rows = [row for entry, fields in entries if (row := _row(entry, fields))]
            if rows:
                write_rows(rows)
            client.xdel(stream, *[entry for entry, _ in entries])
            written += len(rows)
        if older_than_ms is not None and not client.xlen(stream):
            client.delete(stream)  # a dead process's empty stream
    return written


def settle() -> int:
    """Everything recorded so far, in SQL now: this process's rows and every stream's."""
    return Journal.of_process().flush() + write_streams()


def _row(entry: str, fields: dict) -> dict | None:
    try:
        return activity.entry(
            journal_id=fields["journal_id"], event_id=int(fields["event_id"]),
            user_id=int(fields["user_id"]), action=fields["action"], outcome=fields["outcome"],
            request_id=fields.get("request_id"), detail=fields.get("detail"),
            occurred_at=datetime.fromisoformat(fields["occurred_at"]))
    except (KeyError, ValueError) as exc:
        log.error("malformed activity entry dropped",
                  extra={"entry": entry, "fields": fields, "error": str(exc)})
        return None


class Flusher(threading.Thread):
    """The daemon thread that writes this process's journal in batches."""

    _lock = threading.Lock()

    def __init__(self, app: Flask) -> None:
        super().__init__(name="turnout-activity", daemon=True)
        self.app = app
        self.pid = os.getpid()
        self.pause = app.config["ACTIVITY_FLUSH_MS"] / 1000

    @classmethod
    def ensure(cls, app: Flask) -> None:
        """Start the thread for `app` in this process unless it runs (also after a fork)."""
        running = app.extensions.get("turnout_flusher")
        if running is not None and running.pid == os.getpid() and running.is_alive():
            return
        with cls._lock:
            running = app.extensions.get("turnout_flusher")
            if running is None or running.pid != os.getpid() or not running.is_alive():
                app.extensions["turnout_flusher"] = flusher = cls(app)
                flusher.start()

    def run(self) -> None:
        journal = Journal.of_process()
        atexit.register(self.last_batch, journal)
        stop = threading.Event()
        while True:
            journal.wait(timeout=5)
            stop.wait(self.pause)  # let a batch gather
            try:
                with self.app.app_context():
                    journal.flush()
            except Exception:
                log.exception("activity batch not written; retrying")
                stop.wait(1.0)

    def last_batch(self, journal: Journal) -> None:
        """At a clean exit (gunicorn's graceful stop): write what is left."""
        if os.getpid() != self.pid:
            return
        try:
            with self.app.app_context():
                journal.flush()
        except Exception:
            log.exception("last activity batch not written; the upkeep loop writes it from Redis")
