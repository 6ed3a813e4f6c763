"""The real worker process: retries, permanent failures, a kill mid-send, Redis down at commit.

Each test runs `python -m workers` against the test's database and Redis and
a real SMTP server (aiosmtpd) that answers as the test says.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from tests.support.processes import wait_until
from tests.support.redisdb import start_private_redis
from webapp.extensions import db
from webapp.mail.models import OutboxMessage
from webapp.registrations import services as registrations

pytestmark = pytest.mark.slow


def outbox_row() -> OutboxMessage:
    db.session.rollback()
    [row] = db.session.scalars(select(OutboxMessage))
    return row


def test_the_worker_delivers_a_registration_once(app_ctx, smtp, start_worker, make_user,
                                                 make_event):
    start_worker()
    person = make_user(email="grace@example.org")
    registrations.register(make_event(capacity=3, title="Compilers").id, person.id)
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "You are registered: Compilers"
    wait_until(lambda: outbox_row().status == "sent", what="row marked sent")
    assert smtp.data_commands == 1


def test_451_twice_then_250_is_delivered_on_the_third_try(app_ctx, smtp, start_worker,
                                                          make_user, make_event):
    smtp.answers = ["451 4.3.0 Try again later", "451 4.3.0 Try again later"]
    start_worker()
    registrations.register(make_event(capacity=3).id, make_user().id)
    smtp.wait_for(1, seconds=30)
    row = wait_until(lambda: (r := outbox_row()).status == "sent" and r, what="sent")
    assert row.attempts == 3
    assert smtp.data_commands == 3 and len(smtp.messages) == 1


def test_550_is_marked_failed_and_not_retried(app_ctx, smtp, start_worker, make_user,
                                              make_event):
    smtp.answers = ["550 5.1.1 No such mailbox"] * 5
    start_worker()
    registrations.register(make_event(capacity=3).id, make_user().id)
    row = wait_until(lambda: (r := outbox_row()).status == "failed" and r, what="failed")
    assert row.attempts == 1 and "550" in row.last_error
    # Retries (1 s apart) and sweeps (every 1 s) would have come by now.
    import time

    time.sleep(4)
    assert smtp.data_commands == 1 and smtp.messages == []
    assert outbox_row().status == "failed"


def test_connection_refused_is_retried_until_the_server_is_back(app_ctx, smtp, start_worker,
                                                                 make_user, make_event):
    from tests.support.processes import free_port

    start_worker(MAIL_PORT=str(free_port()))  # nothing listens there
    registrations.register(make_event(capacity=3).id, make_user().id)
    wait_until(lambda: outbox_row().attempts >= 2, what="two refused attempts")
    row = outbox_row()
    assert row.status in ("pending", "sending") and row.sent_at is None
    assert "refused" in (row.last_error or "").lower()


@pytest.mark.parametrize("accepted_before_kill", [False, True],
                         ids=["killed-before-accept", "killed-after-accept"])
def test_a_worker_killed_mid_send_is_replaced_and_the_message_arrives(
        app_ctx, smtp, start_worker, make_user, make_event, accepted_before_kill):
    smtp.hold = True
    smtp.keep_before_hold = accepted_before_kill
    smtp.answers = ["451 4.4.2 Connection dropped"]  # what the held DATA finally answers
    first = start_worker()
    registrations.register(make_event(capacity=3).id, make_user().id)
    assert smtp.holding.wait(20), first.log()
    first.kill()  # SIGKILL: worker, work-horse and upkeep, in the middle of DATA
    assert outbox_row().status == "sending"
    smtp.hold = False
    smtp.release.set()

    start_worker()  # the claim's lease (5 s) runs out; the sweeper hands the row on
    row = wait_until(lambda: (r := outbox_row()).status == "sent" and r, seconds=30,
                     what="sent after the restart")
    assert row.attempts == 2
    if accepted_before_kill:
        # The one duplicate we accept: the server took the message, the worker never
        # heard the 250. Both copies carry the same Message-ID, so a client can tell.
        messages = smtp.wait_for(2)
        assert len(messages) == 2
        assert messages[0]["Message-ID"] == messages[1]["Message-ID"]
    else:
        assert len(smtp.wait_for(1)) == 1
    import time

    time.sleep(2)  # no late extra copy
    assert len(smtp.messages) == (2 if accepted_before_kill else 1)


@pytest.fixture
def private_redis():
    server = start_private_redis()
    yield server
    server.stop()


@pytest.fixture
def app_config(smtp, private_redis) -> dict:
    from tests.support.mail import FAST_MAIL

    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp.port,
            "REDIS_URL": f"redis://127.0.0.1:{private_redis.port}/0", **FAST_MAIL}


def test_redis_down_at_commit_then_the_sweeper_delivers(app_ctx, smtp, private_redis,
                                                        start_worker, make_user, make_event):
    event = make_event(capacity=3, title="Resilience")
    person = make_user()
    private_redis.stop()

    outcome = registrations.register(event.id, person.id)  # the SQL guard alone

    assert outcome.status == "confirmed"
    assert outbox_row().status == "pending"
    restarted = start_private_redis(private_redis.port)
    try:
        start_worker()
        [message] = smtp.wait_for(1, seconds=30)
        assert message["Subject"] == "You are registered: Resilience"
        wait_until(lambda: outbox_row().status == "sent", what="sent")
    finally:
        restarted.stop()



def _policies(pid: int) -> set[int]:
    """The scheduling policy of every thread of pid and of its child processes."""
    policies = set()
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        policies.update(os.sched_getscheduler(thread.id) for thread in proc.threads())
    return policies


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux-only")
@pytest.mark.parametrize(("setting", "policy"), [(None, "SCHED_IDLE"), ("0", "SCHED_OTHER")])
def test_the_worker_runs_on_the_cpu_time_the_web_leaves(app_ctx, smtp, start_worker, make_user,
                                                        make_event, setting, policy):
    worker = start_worker(**({} if setting is None else {"WORKER_IDLE_PRIORITY": setting}))
    registrations.register(make_event(capacity=3).id, make_user().id)
    smtp.wait_for(1)  # the worker has sent: its threads are running
    wait_until(lambda: psutil.Process(worker.proc.pid).children(), what="the upkeep process")
    assert _policies(worker.proc.pid) == {getattr(os, policy)}, worker.log()


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(),
                    reason="this kernel has no autogroups (CONFIG_SCHED_AUTOGROUP)")
@pytest.mark.parametrize(("setting", "nice"), [(None, "19"), ("0", "0")])
def test_a_worker_in_its_own_session_lowers_its_cpu_group(app_ctx, smtp, start_worker,
                                                          make_user, make_event, setting, nice):
    """SCHED_IDLE ranks threads only inside a group; each session is a group of its own."""
    worker = start_worker(**({} if setting is None else {"WORKER_IDLE_PRIORITY": setting}))
    registrations.register(make_event(capacity=3).id, make_user().id)
    smtp.wait_for(1)  # the worker is past its start-up

    assert os.getsid(worker.proc.pid) == worker.proc.pid  # the fixture's own session
    assert Path(f"/proc/{worker.proc.pid}/autogroup").read_text().split()[-1] == nice, worker.log()
