"""Bug 1: nobody is promoted once the event has started (and so no promotion email goes
out): a cancellation after the start just frees the seat; nor does a capacity raise or
reconcile's self-healing fill promote."""

from __future__ import annotations

from sqlalchemy import text

from webapp.database import read_session, write_session
from webapp.registrations import services
from webapp.registrations.models import Status
from webapp.registrations.reconcile import reconcile_upcoming
from webapp.reports.models import Action


def start_now(event_id: int) -> None:
    """The event starts: its start moves to a minute ago (as time passing would)."""
    with write_session() as s:
        s.execute(text("UPDATE events SET starts_at = :t WHERE id = :e"),
                  {"t": _minutes_ago(1), "e": event_id})


def _minutes_ago(minutes: int):
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(minutes=minutes)


def promotion_mails(event_id: int) -> int:
    with read_session() as s:
        return s.execute(text("SELECT count(*) FROM outbox WHERE event_id = :e "
                              "AND kind = 'promoted'"), {"e": event_id}).scalar_one()


def full_event_with_a_queue(make_event, make_user):
    event = make_event(capacity=1, waitlist_enabled=True)
    seated, waiting = make_user(), make_user()
    assert services.register(event.id, seated.id).status == Status.CONFIRMED
    assert services.register(event.id, waiting.id).status == Status.WAITLISTED
    return event, seated, waiting


def test_a_cancellation_after_the_start_promotes_nobody(app_ctx, make_event, make_user,
                                                        counts):
    event, seated, _waiting = full_event_with_a_queue(make_event, make_user)
    start_now(event.id)
    outcome = services.cancel(event.id, seated.id)
    assert (outcome.previous, outcome.promoted) == (Status.CONFIRMED, ())
    c = counts(event.id)
    assert (c["confirmed_count"], c["confirmed"], c["waitlisted"]) == (0, 0, 1)
    assert promotion_mails(event.id) == 0


def test_an_organizer_cancel_after_the_start_promotes_nobody(app_ctx, make_event, make_user):
    event, seated, _waiting = full_event_with_a_queue(make_event, make_user)
    start_now(event.id)
    outcome = services.cancel(event.id, seated.id, action=Action.ORGANIZER_CANCEL)
    assert outcome.promoted == ()
    assert promotion_mails(event.id) == 0


def test_a_capacity_raise_or_reconcile_after_the_start_promotes_nobody(
        app_ctx, make_event, make_user, counts):
    event, _seated, _waiting = full_event_with_a_queue(make_event, make_user)
    start_now(event.id)
    assert services.resize(event.id, 5) == []
    reconcile_upcoming()
    assert services.fill_from_waitlist(event.id) == []
    c = counts(event.id)
    assert (c["capacity"], c["confirmed"], c["waitlisted"]) == (5, 1, 1)
    assert promotion_mails(event.id) == 0


def test_before_the_start_a_cancellation_still_promotes(app_ctx, make_event, make_user):
    event, seated, waiting = full_event_with_a_queue(make_event, make_user)
    assert services.cancel(event.id, seated.id).promoted == (waiting.id,)
    assert promotion_mails(event.id) == 1
