"""The outbox is written with the change it announces, and a job sends each row once."""

from __future__ import annotations

import contextlib

import icalendar
import pytest
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from webapp.errors import EventFull, RegistrationFailed
from webapp.extensions import db, redis_store
from webapp.mail import jobs, services
from webapp.mail.models import OutboxMessage
from webapp.registrations import services as registrations


def rows(**where) -> list[OutboxMessage]:
    db.session.rollback()
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    return list(db.session.scalars(query))


def queued_ids() -> list[int]:
    queue = Queue("emails", connection=redis_store.rq_client, serializer=JSONSerializer)
    return [job.args[0] for job in queue.get_jobs()]


def calendar_of(message) -> icalendar.Calendar | None:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    return None


def test_a_registration_writes_one_row_and_enqueues_one_job(app_ctx, make_user, make_event):
    person = make_user(name="Ada Lovelace")
    event = make_event(capacity=5, title="Analytical Engines", location="Room 101")
    registrations.register(event.id, person.id)

    [row] = rows()
    assert (row.kind, row.user_id, row.event_id, row.status) == (
        "confirmation", person.id, event.id, "pending")
    assert queued_ids() == [row.id]


def test_the_confirmation_names_the_event_and_carries_a_calendar_invitation(
        app_ctx, smtp, make_user, make_event):
    person = make_user(name="Ada Lovelace", email="ada@example.org")
    event = make_event(capacity=5, title="Analytical Engines", location="Room 101",
                       description="Bring punch cards.")
    registrations.register(event.id, person.id)
    [row] = rows()

    assert jobs.deliver(row.id) == "sent"

    [message] = smtp.wait_for(1)
    assert smtp.envelopes[0][1] == ["ada@example.org"]
    assert message["Subject"] == "You are registered: Analytical Engines"
    assert message["Message-ID"] == f"<outbox.{row.id}@turnout.example>"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    starts = event.starts_at
    for body in (text, html):
        assert "Analytical Engines" in body
        assert "Room 101" in body
        assert f"{starts:%B %Y}" in body and f"{starts:%H:%M}" in body
        assert f"https://turnout.example/events/{event.id}" in body
    assert "Cancel registration" in text
    cal = calendar_of(message)
    assert cal is not None and cal["METHOD"] == "REQUEST"
    [entry] = cal.walk("VEVENT")
    assert entry["SUMMARY"] == "Analytical Engines"
    assert entry["LOCATION"] == "Room 101"
    assert entry.decoded("DTSTART") == starts.replace(microsecond=0)
    assert entry.decoded("DTEND") == event.ends_at.replace(microsecond=0)
    assert str(entry["UID"]) == f"registration-{row.registration_id}@turnout.example"
    assert "ada@example.org" in str(entry["ATTENDEE"])
    assert rows()[0].status == "sent"


def test_a_second_run_of_the_same_job_sends_nothing(app_ctx, smtp, make_user, make_event):
    person = make_user()
    registrations.register(make_event(capacity=1).id, person.id)
    [row] = rows()
    assert jobs.deliver(row.id) == "sent"
    assert jobs.deliver(row.id) == "nothing to do"
    assert len(smtp.wait_for(1)) == 1 and smtp.data_commands == 1
    assert rows()[0].attempts == 1


def test_a_live_claim_is_not_taken_twice(app_ctx, make_user, make_event):
    registrations.register(make_event(capacity=1).id, make_user().id)
    [row] = rows()
    first = services.claim(row.id)
    assert first is not None and first.attempt == 1
    assert services.claim(row.id) is None  # another sender while the lease lasts


def test_a_rejected_attempt_writes_no_email(app_ctx, make_user, make_event):
    event = make_event(capacity=1)
    registrations.register(event.id, make_user().id)
    with pytest.raises(EventFull):
        registrations.register(event.id, make_user().id)
    assert [r.kind for r in rows()] == ["confirmation"]
    assert len(queued_ids()) == 1


def test_a_failed_transaction_leaves_no_row_and_no_job(app_ctx, make_user, make_event,
                                                      at_registration_commit):
    event = make_event(capacity=3)

    def boom():  # at the commit, after the email row was written (or, when the
        raise RuntimeError("disk full")  # statement is its own commit, instead of it)

    at_registration_commit("before", boom)
    with pytest.raises(RegistrationFailed):
        registrations.register(event.id, make_user().id)
    assert rows() == []
    assert queued_ids() == []


def test_waitlist_cancel_and_promotion_each_tell_the_person(app_ctx, smtp, make_user,
                                                            make_event):
    event = make_event(capacity=1, waitlist_enabled=True, title="Tiny Talk")
    first, second = make_user(name="First"), make_user(name="Second")
    registrations.register(event.id, first.id)
    registrations.register(event.id, second.id)
    registrations.cancel(event.id, first.id)

    assert [(r.kind, r.user_id, r.position) for r in rows()] == [
        ("confirmation", first.id, None),
        ("waitlisted", second.id, 1),
        ("cancellation", first.id, None),
        ("promoted", second.id, None),
    ]
    for row in rows():
        assert jobs.deliver(row.id) == "sent"
    confirmation, waitlisted, cancellation, promoted = smtp.wait_for(4)

    assert "number 1" in waitlisted["Subject"] and calendar_of(waitlisted) is None
    assert "number 1" in waitlisted.get_body(("plain",)).get_content()
    assert promoted["Subject"] == "A seat opened up, you are registered: Tiny Talk"
    assert calendar_of(promoted)["METHOD"] == "REQUEST"
    invite, cancel = calendar_of(confirmation), calendar_of(cancellation)
    assert cancel["METHOD"] == "CANCEL"
    [added], [removed] = invite.walk("VEVENT"), cancel.walk("VEVENT")
    assert removed["UID"] == added["UID"]  # the CANCEL removes exactly that entry
    assert int(removed["SEQUENCE"]) > int(added["SEQUENCE"])
    assert removed["STATUS"] == "CANCELLED"


def test_leaving_the_waitlist_sends_no_calendar_cancel(app_ctx, smtp, make_user, make_event):
    event = make_event(capacity=1, waitlist_enabled=True)
    registrations.register(event.id, make_user().id)
    waiting = make_user()
    registrations.register(event.id, waiting.id)
    registrations.cancel(event.id, waiting.id)
    row = rows(kind="cancellation")[0]
    assert row.position == 1
    jobs.deliver(row.id)
    [message] = smtp.wait_for(1)
    assert calendar_of(message) is None
    assert "left the waitlist" in message.get_body(("plain",)).get_content()


def test_names_and_titles_cannot_inject_headers(app_ctx, smtp, make_user, make_event):
    person = make_user(name="Eve\r\nBcc: victim@example.org", email="eve@example.org")
    event = make_event(capacity=2, title="Party\r\nBcc: all@example.org\nX-Evil: 1",
                       location="Hall\r\nX-Evil: 2")
    registrations.register(event.id, person.id)
    [row] = rows()
    assert jobs.deliver(row.id) == "sent"
    [message] = smtp.wait_for(1)
    assert smtp.envelopes[0][1] == ["eve@example.org"]
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert message["Subject"] == "You are registered: Party Bcc: all@example.org X-Evil: 1"


def test_one_row_per_confirmation_under_a_rush(app_ctx, make_user, make_event):
    from concurrent.futures import ThreadPoolExecutor

    from webapp.errors import ServiceError

    event = make_event(capacity=5)
    people = [make_user().id for _ in range(30)]
    app = app_ctx

    def attempt(user_id):
        with app.app_context(), contextlib.suppress(ServiceError):
            registrations.register(event.id, user_id)

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(attempt, people))
    db.session.rollback()
    confirmed = db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                  .where(OutboxMessage.kind == "confirmation"))
    assert confirmed == 5
    assert sorted(queued_ids()) == sorted(r.id for r in rows())


def test_the_sweeper_hands_on_due_rows_once_per_grace_period(app_ctx, make_user, make_event):
    from datetime import timedelta

    from webapp.sqltypes import utcnow

    registrations.register(make_event(capacity=3).id, make_user().id)
    [row] = rows()
    queue = Queue("emails", connection=redis_store.rq_client, serializer=JSONSerializer)
    queue.empty()  # as if Redis had lost the job
    now = utcnow()

    assert services.sweep(now) == 0  # its job still has time (OUTBOX_GRACE_SECONDS)
    later = now + timedelta(seconds=2)
    assert services.sweep(later) == 1
    assert queued_ids() == [row.id]
    assert services.sweep(later) == 0  # not again until another grace period passed


def test_the_sweeper_takes_over_a_claim_whose_sender_died(app_ctx, make_user, make_event):
    from datetime import timedelta

    from webapp.sqltypes import utcnow

    registrations.register(make_event(capacity=3).id, make_user().id)
    [row] = rows()
    assert services.claim(row.id) is not None  # ... and the sender is killed here
    Queue("emails", connection=redis_store.rq_client, serializer=JSONSerializer).empty()
    lease = app_ctx.config["MAIL_SEND_LEASE_SECONDS"]

    assert services.sweep(utcnow() + timedelta(seconds=lease - 2)) == 0  # might still be alive
    assert services.sweep(utcnow() + timedelta(seconds=lease + 1)) == 1
    assert queued_ids() == [row.id]


def test_sent_and_failed_rows_are_never_swept(app_ctx, smtp, make_user, make_event):
    from datetime import timedelta

    from webapp.sqltypes import utcnow

    event = make_event(capacity=3)
    registrations.register(event.id, make_user().id)
    registrations.register(event.id, make_user().id)
    sent, failing = rows()
    jobs.deliver(sent.id)
    smtp.answers = ["554 5.7.1 Rejected"]
    assert jobs.deliver(failing.id) == "failed"
    assert services.sweep(utcnow() + timedelta(days=1)) == 0
    with app_ctx.app_context():
        from webapp.database import read_session
        from webapp.mail.services import failed_for_event

        with read_session() as session:
            [shown] = failed_for_event(session, event.id)
            assert shown.id == failing.id and "554" in shown.last_error


def test_the_organizer_sees_emails_that_failed_for_good(app, smtp, make_user, make_event,
                                                        make_client):
    owner = make_user(organizer=True, email="owner@example.org")
    event = make_event(capacity=3, organizer=owner)
    person = make_user(name="Bounce Person", email="bounce@example.org")
    with app.app_context():
        registrations.register(event.id, person.id)
        smtp.answers = ["550 5.1.1 No such mailbox here"]
        assert jobs.deliver(rows()[0].id) == "failed"
    client = make_client()
    client.login("owner@example.org")
    page = client.get(f"/organizer/events/{event.id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Emails not delivered" in text
    assert "bounce@example.org" in text and "550 5.1.1 No such mailbox here" in text
