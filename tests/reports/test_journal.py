"""The activity journal: rejections kept in memory and in Redis, written to SQL once, later."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.support.processes import free_port
from tests.support.races import race
from webapp.database import read_session
from webapp.errors import EventFull
from webapp.extensions import db, redis_store
from webapp.registrations import services
from webapp.reports import journal
from webapp.reports.journal import STREAM_PREFIX, Journal, settle, write_streams
from webapp.reports.models import ActivityEntry
from webapp.sqltypes import utcnow
from workers.maintenance import drain_activity

MISSING_ID = 999_999


# --- helpers -------------------------------------------------------------------

def own_stream() -> str:
    """This process's stream (a new one after Journal.reset(), as in a new process)."""
    return Journal.of_process().stream


def streams(client) -> list[str]:
    return sorted(client.scan_iter(match=f"{STREAM_PREFIX}*"))


def reject(event_id: int, user_id: int, request_id: str | None = None) -> None:
    with pytest.raises(EventFull):
        services.register(event_id, user_id, request_id=request_id)


def rejections(event_id: int) -> list[ActivityEntry]:
    """What activity_log holds for the event, apart from the seat-holder's confirmation."""
    with read_session() as s:
        return list(s.scalars(select(ActivityEntry).where(
            ActivityEntry.event_id == event_id, ActivityEntry.outcome != "confirmed")
            .order_by(ActivityEntry.id)))


def people(rows: list[ActivityEntry]) -> Counter:
    return Counter(row.user_id for row in rows)


def wait_for(condition, seconds: float = 5.0) -> bool:
    """Poll until `condition()` holds or the deadline passes (a wait, not a timing claim)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@contextmanager
def failing_activity_inserts(*, on: tuple[int, ...] = (1,)) -> Iterator[dict]:
    """The database fails the n-th INSERT into activity_log (counting from 1) for n in `on`."""
    seen = {"inserts": 0, "failed": 0}

    def fail(_conn, _cursor, statement, params, *_rest):
        if statement.lstrip().lower().startswith("insert into activity_log"):
            seen["inserts"] += 1
            if seen["inserts"] in on:
                seen["failed"] += 1
                raise OperationalError(statement, params, Exception("server closed the connection"))

    engine = db.engine
    sa_event.listen(engine, "before_cursor_execute", fail)
    try:
        yield seen
    finally:
        sa_event.remove(engine, "before_cursor_execute", fail)


@contextmanager
def redis_down(app, monkeypatch) -> Iterator[None]:
    """Every Redis call of the app (journal and seat gate) fails at once, until the block ends."""
    dead = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0), decode_responses=True)
    with monkeypatch.context() as m:
        m.setattr(redis_store, "_client", dead)
        m.delitem(app.extensions, "turnout_gate", raising=False)  # rebuilt on the dead client
        yield
    app.extensions.pop("turnout_gate", None)  # rebuilt on the live client


@pytest.fixture
def activity_logs(monkeypatch) -> Iterator[list[logging.LogRecord]]:
    """Records of the turnout.activity logger (turnout's loggers do not propagate to caplog)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("turnout.activity")
    # The migrations' fileConfig() disabled every logger that existed when the schema was built.
    monkeypatch.setattr(logger, "disabled", False)
    handler = Keep(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def full_event(app_ctx, make_event, make_user):
    """An event whose only seat is taken (no waitlist): every further attempt is rejected_full."""
    event = make_event(capacity=1)
    services.register(event.id, make_user().id)
    return event


# --- the normal path -----------------------------------------------------------

def test_a_rejection_waits_in_memory_and_redis_and_one_flush_writes_it_once(
        app_ctx, full_event, make_user, redis_client):
    person = make_user()
    before = utcnow()
    reject(full_event.id, person.id, request_id="req-journal-1")
    after = utcnow()

    assert rejections(full_event.id) == []
    mine = Journal.of_process()
    assert streams(redis_client) == [mine.stream] == [f"{STREAM_PREFIX}{mine.token}"]
    [(_, fields)] = redis_client.xrange(mine.stream)
    assert (fields["event_id"], fields["user_id"], fields["outcome"]) == (
        str(full_event.id), str(person.id), "rejected_full")

    time.sleep(0.2)  # a stamp taken at flush time would fall after `after`
    assert Journal.of_process().flush() == 1

    [row] = rejections(full_event.id)
    assert (row.user_id, row.action, row.outcome, row.request_id) == (
        person.id, "register", "rejected_full", "req-journal-1")
    assert row.journal_id == fields["journal_id"] == f"{mine.token}/1"
    assert before <= row.occurred_at <= after
    assert redis_client.xlen(own_stream()) == 0
    assert Journal.of_process().flush() == 0  # nothing is kept to be written again
    assert len(rejections(full_event.id)) == 1


def test_redis_losing_the_stream_before_the_flush_loses_nothing(
        app_ctx, full_event, make_user, redis_client):
    person = make_user()
    reject(full_event.id, person.id)
    [(_, fields)] = redis_client.xrange(own_stream())

    redis_client.flushdb()
    Journal.of_process().flush()

    [row] = rejections(full_event.id)
    assert (row.user_id, row.journal_id) == (person.id, fields["journal_id"])


# --- a process that died -------------------------------------------------------

def test_the_streams_of_a_dead_process_are_written_once_they_are_old_enough(
        app_ctx, full_event, make_user, redis_client):
    a, b = make_user(), make_user()
    reject(full_event.id, a.id)
    reject(full_event.id, b.id)
    dead = Journal.of_process()
    journal_ids = [fields["journal_id"] for _, fields in redis_client.xrange(dead.stream)]
    assert journal_ids == [f"{dead.token}/1", f"{dead.token}/2"]
    Journal.reset()  # the process died: its memory is gone, Redis has the entries

    assert Journal.of_process().flush() == 0
    assert write_streams(older_than_ms=3_600_000) == 0  # fresh: its owner may still write them
    assert rejections(full_event.id) == []
    assert redis_client.xlen(dead.stream) == 2

    assert write_streams(older_than_ms=0) == 2
    rows = rejections(full_event.id)
    assert people(rows) == {a.id: 1, b.id: 1}
    assert sorted(row.journal_id for row in rows) == sorted(journal_ids)
    assert streams(redis_client) == []  # the dead process's empty stream is gone


def test_the_upkeep_loop_writes_what_a_dead_process_left(
        app, app_ctx, full_event, make_user, redis_client):
    person = make_user()
    reject(full_event.id, person.id)
    dead = own_stream()
    Journal.reset()

    app.config["ACTIVITY_ORPHAN_MS"] = 3_600_000
    drain_activity()
    assert rejections(full_event.id) == []
    assert redis_client.xlen(dead) == 1

    app.config["ACTIVITY_ORPHAN_MS"] = 0
    drain_activity()
    assert people(rejections(full_event.id)) == {person.id: 1}
    assert streams(redis_client) == []


# --- exactly once --------------------------------------------------------------

def test_entries_written_from_redis_and_then_from_memory_give_one_row_each(
        app_ctx, full_event, make_user, redis_client):
    persons = [make_user() for _ in range(3)]
    for person in persons:
        reject(full_event.id, person.id)

    assert write_streams() == 3
    Journal.of_process().flush()  # the owner's batch comes late: every row is there already

    rows = rejections(full_event.id)
    assert people(rows) == {p.id: 1 for p in persons}
    assert None not in {row.journal_id for row in rows}


def test_entries_written_from_memory_whose_deletion_was_lost_are_not_written_again(
        app_ctx, full_event, make_user, redis_client, monkeypatch):
    persons = [make_user() for _ in range(3)]
    for person in persons:
        reject(full_event.id, person.id)

    def lost(*_args):
        raise redis.ConnectionError("connection reset by peer")

    with monkeypatch.context() as m:
        m.setattr(redis_client, "xdel", lost)
        assert Journal.of_process().flush() == 3
    assert redis_client.xlen(own_stream()) == 3  # committed, yet still in Redis

    write_streams()

    assert people(rejections(full_event.id)) == {p.id: 1 for p in persons}
    assert redis_client.xlen(own_stream()) == 0


def test_two_processes_rejecting_in_the_same_millisecond_both_get_their_row(
        app_ctx, full_event, make_user, redis_client):
    mine, theirs = make_user(), make_user()
    reject(full_event.id, mine.id)
    [(entry_id, fields)] = redis_client.xrange(own_stream())
    # Another web process refused someone in the same millisecond and died before its batch:
    # XADD numbers each stream by the clock, so its first entry has the very same id.
    redis_client.xadd(f"{STREAM_PREFIX}0123456789ab", {
        **fields, "user_id": str(theirs.id), "journal_id": "0123456789ab/1"}, id=entry_id)

    settle()

    assert people(rejections(full_event.id)) == {mine.id: 1, theirs.id: 1}


def test_a_database_failure_during_a_flush_keeps_the_rows_for_the_next_one(
        app_ctx, full_event, make_user, redis_client):
    persons = [make_user() for _ in range(3)]
    for person in persons:
        reject(full_event.id, person.id)

    with failing_activity_inserts(on=(1,)) as seen, pytest.raises(OperationalError):
        Journal.of_process().flush()
    assert seen["failed"] == 1
    assert rejections(full_event.id) == []
    assert len(Journal.of_process().rows) == 3
    assert redis_client.xlen(own_stream()) == 3

    assert Journal.of_process().flush() == 3
    assert people(rejections(full_event.id)) == {p.id: 1 for p in persons}
    assert redis_client.xlen(own_stream()) == 0


@pytest.mark.parametrize("missing", ["event", "person"])
@pytest.mark.parametrize("writer", ["memory", "redis"])
def test_an_entry_whose_event_or_person_is_gone_is_dropped_and_the_rest_written(
        app_ctx, full_event, make_user, redis_client, activity_logs, missing, writer):
    first, last = make_user(), make_user()
    reject(full_event.id, first.id)
    bad = {"event_id": MISSING_ID if missing == "event" else full_event.id,
           "user_id": MISSING_ID if missing == "person" else first.id}
    journal.append(**bad, action="register", outcome="rejected_full", request_id="req-bad")
    reject(full_event.id, last.id)

    stream = own_stream()
    if writer == "memory":
        assert Journal.of_process().flush() == 3
    else:
        Journal.reset()
        write_streams()

    assert people(rejections(full_event.id)) == {first.id: 1, last.id: 1}
    with read_session() as s:
        assert s.scalar(select(ActivityEntry.id).where(
            ActivityEntry.request_id == "req-bad")) is None
    assert redis_client.xlen(stream) == 0  # the bad entry cannot block later batches
    dropped = [r for r in activity_logs if r.getMessage().startswith("activity entry dropped")]
    assert [(r.event_id, r.user_id) for r in dropped] == [(bad["event_id"], bad["user_id"])]


# --- without Redis, without the journal -----------------------------------------

def test_redis_down_at_the_attempt_still_gives_its_row_from_memory(
        app, app_ctx, full_event, make_user, monkeypatch, activity_logs):
    person = make_user()
    with redis_down(app, monkeypatch):
        reject(full_event.id, person.id)
        assert Journal.of_process().flush() == 1  # no Redis needed to write it either

    [row] = rejections(full_event.id)
    # Its journal id still comes from the process (a token and a counter), not from Redis.
    assert (row.user_id, row.outcome) == (person.id, "rejected_full")
    assert row.journal_id == f"{Journal.of_process().token}/1"
    assert any("Redis unavailable" in r.getMessage() for r in activity_logs)


@pytest.mark.parametrize("app_config", [{"ACTIVITY_JOURNAL": False}], ids=["journal-off"])
def test_with_the_journal_off_a_rejection_is_written_at_once(
        app_ctx, full_event, make_user, redis_client):
    person = make_user()
    reject(full_event.id, person.id)

    [row] = rejections(full_event.id)  # no flush
    assert (row.user_id, row.outcome, row.journal_id) == (person.id, "rejected_full", None)
    assert streams(redis_client) == []
    assert Journal.of_process().rows == []


# --- the flusher thread --------------------------------------------------------

@pytest.mark.parametrize("app_config", [{"ACTIVITY_DRAIN_THREAD": True, "ACTIVITY_FLUSH_MS": 10}],
                         ids=["drain-thread"])
def test_the_flusher_thread_writes_rejections_without_being_asked(
        app, app_ctx, full_event, make_user, redis_client):
    persons = [make_user() for _ in range(3)]
    for person in persons:
        reject(full_event.id, person.id)

    assert wait_for(lambda: len(rejections(full_event.id)) == 3
                    and redis_client.xlen(own_stream()) == 0), "the thread wrote nothing"
    assert people(rejections(full_event.id)) == {p.id: 1 for p in persons}
    flusher = app.extensions["turnout_flusher"]
    assert flusher.is_alive() and flusher.pid == os.getpid()


# --- concurrency ---------------------------------------------------------------

def test_many_threads_rejected_at_once_give_exactly_one_row_per_attempt(
        app, app_ctx, full_event, make_user, redis_client):
    racers, attempts = 20, 10
    persons = [make_user() for _ in range(racers)]
    running = {"rejecters": racers}
    lock = threading.Lock()

    def rejecter(user_id: int):
        def run() -> int:
            refused = 0
            try:
                for _ in range(attempts):
                    try:
                        services.register(full_event.id, user_id)
                    except EventFull:
                        refused += 1
            finally:
                with lock:
                    running["rejecters"] -= 1
            return refused
        return run

    def batches() -> int:
        # Memory only (no write_streams, which would hide a row lost from memory):
        # batches are taken while entries arrive, as the flusher thread does.
        written = 0
        while running["rejecters"]:
            written += Journal.of_process().flush()
            time.sleep(0.002)
        return written

    results = race(app, [rejecter(p.id) for p in persons] + [batches])
    assert results == [attempts] * racers + [results[-1]], results
    assert isinstance(results[-1], int), results[-1]
    Journal.of_process().flush()

    rows = rejections(full_event.id)
    assert people(rows) == {p.id: attempts for p in persons}
    assert len({row.journal_id for row in rows} - {None}) == racers * attempts
    assert redis_client.xlen(own_stream()) == 0  # every entry acknowledged by its batch


def test_batches_and_drains_racing_over_the_same_entries_write_each_once(
        app, app_ctx, full_event, make_user, redis_client):
    persons = [make_user() for _ in range(5)]
    for person in persons:
        for _ in range(20):
            reject(full_event.id, person.id)

    results = race(app, [lambda: Journal.of_process().flush()] * 4 + [write_streams] * 4)
    assert not [r for r in results if isinstance(r, Exception)], results

    assert people(rejections(full_event.id)) == {p.id: 20 for p in persons}
    assert redis_client.xlen(own_stream()) == 0


# --- defects found by these tests, fixed: journal ids were once stream entry ids ---

def test_a_failure_midway_through_the_row_by_row_fallback_writes_no_row_twice(
        app, app_ctx, full_event, make_user, monkeypatch):
    first, last = make_user(), make_user()
    with redis_down(app, monkeypatch):
        reject(full_event.id, first.id)
        journal.append(event_id=full_event.id, user_id=MISSING_ID, action="register",
                       outcome="rejected_full", request_id=None)
        reject(full_event.id, last.id)

    # INSERTs: 1 the batch (breaks the foreign key), 2 `first` alone (commits),
    # 3 the bad row alone (dropped), 4 `last` alone: the database fails here.
    with failing_activity_inserts(on=(4,)) as seen, pytest.raises(OperationalError):
        Journal.of_process().flush()
    assert seen["failed"] == 1
    Journal.of_process().flush()

    assert people(rejections(full_event.id)) == {first.id: 1, last.id: 1}


def test_an_entry_id_redis_hands_out_again_after_losing_the_stream_still_gets_its_row(
        app_ctx, full_event, make_user, redis_client):
    person = make_user()
    appended: list[str] = []
    reused = 0
    for i in range(200):
        ids = []
        for half in "ab":
            appended.append(f"req-{i}-{half}")
            journal.append(event_id=full_event.id, user_id=person.id, action="register",
                           outcome="rejected_full", request_id=appended[-1])
            ids += [entry for entry, _ in redis_client.xrange(own_stream())]
            redis_client.delete(own_stream())  # Redis lost the stream (FLUSHDB, eviction)
        reused += ids[0] == ids[1]
        if reused:
            break
    assert reused, "Redis never handed out an entry id twice: the test proves nothing"

    Journal.of_process().flush()

    assert sorted(row.request_id for row in rejections(full_event.id)) == sorted(appended)
