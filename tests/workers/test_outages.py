"""`python -m workers` through Redis, PostgreSQL and SMTP outages: it stays up, its RQ worker
is the same process afterwards, and every email goes out once the outage ends.

Timings are FAST_MAIL's (tests/support/mail.py): sweep every second, grace 1 s,
lease 5 s, retries 1 s apart; the bounds asserted here are generous multiples.
"""

from __future__ import annotations

import collections
import time

import pytest
from sqlalchemy import insert, select

from tests.support.outages import close_database, open_database, worker_child
from tests.support.processes import free_port, wait_until
from webapp.extensions import db
from webapp.mail.models import MailKind, MailStatus, OutboxMessage
from webapp.registrations import services as registrations

pytestmark = pytest.mark.slow


def rows() -> list[OutboxMessage]:
    db.session.rollback()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def statuses() -> dict[str, int]:
    return dict(collections.Counter(row.status for row in rows()))


def register_many(make_user, make_event, count: int) -> None:
    event = make_event(capacity=count)
    for person in [make_user() for _ in range(count)]:
        registrations.register(event.id, person.id)


def assert_one_message_per_row(smtp) -> None:
    """Every row's email arrived, each once, and carries the row's own Message-ID."""
    ids = [message["Message-ID"] for message in smtp.messages]
    expected = {f"<outbox.{row.id}@turnout.example>" for row in rows()}
    assert set(ids) == expected
    assert len(ids) == len(expected), collections.Counter(ids).most_common(3)


def test_redis_killed_during_a_burst_and_back_empty(app_ctx, smtp, killable_redis,
                                                    start_worker, make_user, make_event):
    """Before: RQ quit with "found an unhandled exception" and the emails waited for a
    restart by hand. Now the same RQ worker process starts a new RQ worker once Redis
    answers, and the sweep enqueues the jobs the empty Redis forgot."""
    smtp.pace = 0.1  # a burst that lasts a few seconds
    worker = start_worker()
    register_many(make_user, make_event, 30)
    smtp.wait_for(8, seconds=30)
    rq = worker_child(worker.pid, "rq")

    killable_redis.kill()  # SIGKILL: the queue and RQ's registries are gone
    time.sleep(2)
    killable_redis.restart()  # empty
    back = time.monotonic()

    wait_until(lambda: statuses() == {MailStatus.SENT: 30}, seconds=40,
               what="all 30 emails sent after Redis came back")
    assert time.monotonic() - back < 40
    assert worker.alive(), worker.tail()
    assert worker_child(worker.pid, "rq").pid == rq.pid, worker.tail()
    assert_one_message_per_row(smtp)
    assert worker.log().count("Redis unreachable") <= 1  # one line per outage


def test_redis_down_between_jobs(app_ctx, smtp, killable_redis, start_worker, make_user,
                                 make_event):
    worker = start_worker()
    event = make_event(capacity=3)
    registrations.register(event.id, make_user().id)
    smtp.wait_for(1)
    rq = worker_child(worker.pid, "rq")

    killable_redis.kill()
    registrations.register(event.id, make_user().id)  # Redis down at commit: SQL alone
    time.sleep(3)  # the idle worker meets the outage
    killable_redis.restart()

    wait_until(lambda: statuses() == {MailStatus.SENT: 2}, seconds=30, what="both sent")
    assert worker.alive() and worker_child(worker.pid, "rq").pid == rq.pid, worker.tail()
    assert_one_message_per_row(smtp)


def test_postgresql_down_during_a_job_and_while_jobs_wait(app, app_ctx, backend, smtp,
                                                          start_worker, make_user, make_event):
    """The held email's SMTP answer comes while PostgreSQL refuses every connection: the job
    waits to record it (no second copy); the queued jobs fail to claim, RQ's retries
    run out, and the sweep hands the rows on once PostgreSQL is back."""
    if backend != "postgresql":
        pytest.skip("closes a PostgreSQL database")
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    # Room for the held job to wait for PostgreSQL (the timeout is the enqueuer's setting).
    app.config.update(MAIL_JOB_TIMEOUT_SECONDS=30, MAIL_SEND_LEASE_SECONDS=40)
    smtp.hold = True
    worker = start_worker(MAIL_JOB_TIMEOUT_SECONDS="30", MAIL_SEND_LEASE_SECONDS="40")
    event = make_event(capacity=4)
    people = [make_user() for _ in range(4)]
    registrations.register(event.id, people[0].id)
    assert smtp.holding.wait(20), worker.tail()
    for person in people[1:]:
        registrations.register(event.id, person.id)
    children = {role: worker_child(worker.pid, role).pid for role in ("rq", "upkeep")}
    db.session.remove()

    close_database(database_url)
    try:
        smtp.hold = False
        smtp.release.set()  # 250 for the held email; recording it needs PostgreSQL
        time.sleep(5)  # claims fail, RQ's 3 retries 1 s apart run out, sweeps fail
    finally:
        open_database(database_url)

    wait_until(lambda: statuses() == {MailStatus.SENT: 4}, seconds=30, what="all sent")
    time.sleep(1.5)  # a late copy would come by now (sweep every 1 s)
    assert_one_message_per_row(smtp)
    assert worker.alive(), worker.tail()
    assert {role: worker_child(worker.pid, role).pid for role in children} == children


def test_an_smtp_outage_longer_than_the_attempts_is_waited_out(app_ctx, smtp, start_worker,
                                                               make_user, make_event):
    """No SMTP server answers: the attempts go past MAIL_MAX_ATTEMPTS, the email is not
    given up (an outage says nothing about the message), and it goes out once a server
    listens again."""
    from aiosmtpd.controller import Controller

    port = free_port()
    worker = start_worker(MAIL_PORT=str(port), MAIL_MAX_ATTEMPTS="2")
    registrations.register(make_event(capacity=3).id, make_user().id)
    wait_until(lambda: rows()[0].attempts >= 3, seconds=30, what="a third refused attempt")
    assert rows()[0].status != MailStatus.FAILED

    controller = Controller(smtp, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        wait_until(lambda: statuses() == {MailStatus.SENT: 1}, seconds=20, what="sent")
    finally:
        controller.stop()
    assert len(smtp.messages) == 1, worker.tail()


def test_a_killed_upkeep_loop_is_restarted_and_sweeps_again(app_ctx, smtp, start_worker,
                                                            make_user, make_event):
    from webapp.database import write_session
    from webapp.mail.services import mail_row

    worker = start_worker()
    event = make_event(capacity=3)
    person = make_user()
    outcome = registrations.register(event.id, person.id)
    smtp.wait_for(1)
    upkeep = wait_until(lambda: worker_child(worker.pid, "upkeep"), what="the upkeep loop")

    upkeep.kill()
    wait_until(lambda: (child := worker_child(worker.pid, "upkeep")) and child.pid != upkeep.pid,
               seconds=10, what="a new upkeep loop")
    with write_session() as session:  # a row whose job never reached Redis
        session.execute(insert(OutboxMessage), [mail_row(
            MailKind.CONFIRMATION, event_id=event.id, user_id=person.id,
            registration_id=outcome.registration_id)])

    wait_until(lambda: statuses() == {MailStatus.SENT: 2}, seconds=20, what="swept and sent")
    assert "worker child exited; restarting it" in worker.log()


def test_the_default_timings_deliver_within_five_minutes_of_an_outage(monkeypatch):
    from webapp.config import from_env
    from webapp.mail.services import delivery_bound_seconds

    for name in ("MAIL_RETRY_INTERVALS", "OUTBOX_GRACE_SECONDS", "MAIL_SEND_LEASE_SECONDS",
                 "OUTBOX_SWEEP_INTERVAL_SECONDS", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    bound = delivery_bound_seconds(from_env())
    assert bound <= 240  # 5 minutes, less a minute for the job and a backlog
